use chrono::Utc;
use poem_openapi::{ApiResponse, OpenApi, payload::Json};

use super::{ApiTags, BearerAuth, types::User};
use crate::{AppState, error::ApiError, store};

pub struct UsersApi;

#[derive(ApiResponse)]
pub enum MeResponse {
    /// The user the access token belongs to.
    #[oai(status = 200)]
    Ok(Json<User>),
}

#[OpenApi(prefix_path = "/v1/users", tag = "ApiTags::Users")]
impl UsersApi {
    /// The current user
    ///
    /// Requires a bearer access token whose session is still live.
    /// Errors: 401 `invalid_token`.
    #[oai(path = "/me", method = "get", operation_id = "getCurrentUser")]
    async fn me(&self, state: poem::web::Data<&AppState>, auth: BearerAuth) -> Result<MeResponse, ApiError> {
        let claims = auth.0;
        let gone = || ApiError::unauthorized("invalid_token", "The session of this token has ended.");
        let session = store::sessions::find_live(&state.db, claims.sid, Utc::now())
            .await
            .map_err(|e| ApiError::internal(e.into()))?;
        if session.is_none_or(|s| s.user_id != claims.sub) {
            return Err(gone());
        }
        let user = store::users::find(&state.db, claims.sub)
            .await
            .map_err(|e| ApiError::internal(e.into()))?
            .ok_or_else(gone)?;
        Ok(MeResponse::Ok(Json(User {
            id: user.id,
            email: user.email,
            email_verified: user.email_verified_at.is_some(),
            name: user.name,
            created_at: user.created_at,
        })))
    }
}
