use poem::Request;
use poem_openapi::{ApiResponse, OpenApi, param::Query, payload::Json};
use uuid::Uuid;

use super::{
    ApiError, ApiTags, BearerAuth, client_info,
    types::{DeleteAccountRequest, Profile, ProfileRequest, SecurityEventPage, User},
};
use crate::{
    AppState,
    auth::{
        account,
        profile::{self, ProfileInput},
    },
    secret::Password,
};

#[derive(Default)]
pub struct UsersApi;

#[derive(ApiResponse)]
pub enum MeResponse {
    /// The user the access token belongs to.
    #[oai(status = 200)]
    Ok(Json<User>),
}

#[derive(ApiResponse)]
pub enum ProfileResponse {
    /// The onboarding profile.
    #[oai(status = 200)]
    Ok(Json<Profile>),
}

#[derive(ApiResponse)]
pub enum AccountDeleted {
    /// The account and everything of it are gone; the address can sign up again.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum EventsResponse {
    /// The caller's security events, newest first.
    #[oai(status = 200)]
    Ok(Json<SecurityEventPage>),
}

const MAX_EVENTS_PAGE: u64 = 100;

type Data<'a> = poem::web::Data<&'a AppState>;

#[OpenApi(prefix_path = "/v1/users", tag = "ApiTags::Users")]
impl UsersApi {
    /// The current user
    ///
    /// Requires a bearer access token whose session is still live.
    /// Errors: 401 `invalid_token`.
    #[oai(path = "/me", method = "get", operation_id = "getCurrentUser")]
    async fn me(&self, auth: BearerAuth) -> Result<MeResponse, ApiError> {
        Ok(MeResponse::Ok(Json(auth.0.into_account().into())))
    }

    /// My onboarding profile
    ///
    /// Errors: 401 `invalid_token`; 404 `profile_not_found` until it is first saved.
    #[oai(path = "/me/profile", method = "get", operation_id = "getProfile")]
    async fn get_profile(&self, state: Data<'_>, auth: BearerAuth) -> Result<ProfileResponse, ApiError> {
        match profile::get(&state, &auth.0).await? {
            Some(saved) => Ok(ProfileResponse::Ok(Json(saved))),
            None => Err(ApiError::not_found("profile_not_found", "No onboarding profile has been saved yet.")),
        }
    }

    /// Save my onboarding profile
    ///
    /// Creates the profile or replaces it whole; after the first save, logins
    /// answer `onboarding_required: false`. Errors: 400 `malformed_request`
    /// (an experience that is not `none`, `beginner`, `intermediate` or
    /// `advanced`); 401 `invalid_token`; 422 `invalid_profile` (`errors` names
    /// the rule: `too_long`, `invalid_characters`).
    #[oai(path = "/me/profile", method = "put", operation_id = "saveProfile")]
    async fn put_profile(
        &self,
        state: Data<'_>,
        auth: BearerAuth,
        body: Json<ProfileRequest>,
    ) -> Result<ProfileResponse, ApiError> {
        let Json(body) = body;
        let input = ProfileInput {
            robotics_experience: body.robotics_experience,
            ai_ml_experience: body.ai_ml_experience,
            learning_goals: body.learning_goals.into(),
        };
        let saved = profile::put(&state, &auth.0, input).await?;
        Ok(ProfileResponse::Ok(Json(saved)))
    }

    /// Delete my account
    ///
    /// Needs the password (accounts without one: a login in the last five
    /// minutes). Deletes the user, their sessions, refresh tokens, profile and
    /// security events in one transaction; every refresh token stops working
    /// at once. Errors: 401 `invalid_token`; 403 `invalid_current_password`,
    /// `reauthentication_required`.
    #[oai(path = "/me", method = "delete", operation_id = "deleteAccount")]
    async fn delete_me(
        &self,
        state: Data<'_>,
        req: &Request,
        auth: BearerAuth,
        body: Json<DeleteAccountRequest>,
    ) -> Result<AccountDeleted, ApiError> {
        let password = body.0.password.map(Password::new);
        account::delete(&state, &auth.0, password.as_ref(), &client_info(req)).await?;
        Ok(AccountDeleted::NoContent)
    }

    /// My security events
    ///
    /// Logins (and failed attempts), logouts, revocations, refresh-token reuse,
    /// email verification, password resets and changes, newest first.
    /// Errors: 401 `invalid_token`; 400 `malformed_request` (`limit` outside 1–100).
    #[oai(path = "/me/events", method = "get", operation_id = "listSecurityEvents")]
    async fn events(
        &self,
        state: Data<'_>,
        auth: BearerAuth,
        /// Page size, 1–100 (default 20).
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        limit: Query<Option<u64>>,
        /// Only events older than this one (the `next_before` of the previous page).
        before: Query<Option<Uuid>>,
    ) -> Result<EventsResponse, ApiError> {
        let limit = limit.0.unwrap_or(20).min(MAX_EVENTS_PAGE);
        let page = account::events(&state, &auth.0, before.0, limit).await?;
        Ok(EventsResponse::Ok(Json(page.into())))
    }
}
