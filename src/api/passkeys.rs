use poem::Request;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};
use uuid::Uuid;

use super::{
    ApiError, ApiTags, BearerAuth,
    auth::{TokenIssued, deliver},
    client_info,
    types::{ReauthenticateRequest, TokenDelivery},
};
use crate::{
    AppState,
    auth::passkeys::{self, PasskeyInfo},
    secret::Password,
};

#[derive(Default)]
pub struct PasskeysApi;

/// Options for `navigator.credentials.create()`.
#[derive(Debug, Object)]
pub struct PasskeyCreationOptions {
    /// A `PublicKeyCredentialCreationOptionsJSON`: pass it to
    /// `PublicKeyCredential.parseCreationOptionsFromJSON()`.
    #[oai(rename = "publicKey")]
    pub public_key: serde_json::Value,
}

/// A new passkey: the browser's answer and a name for it.
#[derive(Debug, Object)]
pub struct PasskeyRegistration {
    /// The created credential's `toJSON()`.
    pub credential: serde_json::Value,
    /// A name for people, 1–64 characters, for example "Laptop".
    pub name: String,
}

#[derive(Debug, Object)]
pub struct PasskeyList {
    pub items: Vec<PasskeyInfo>,
}

/// A passwordless sign-in under way.
#[derive(Debug, Object)]
pub struct PasskeySignInOptions {
    /// Send it back with the answer.
    pub challenge_id: Uuid,
    /// A `PublicKeyCredentialRequestOptionsJSON` for discoverable
    /// credentials: pass it to `PublicKeyCredential.parseRequestOptionsFromJSON()`.
    #[oai(rename = "publicKey")]
    pub public_key: serde_json::Value,
}

/// An empty object.
#[derive(Debug, Object)]
pub struct PasskeySignInStart {}

/// The browser's answer to a passwordless sign-in.
#[derive(Debug, Object)]
pub struct PasskeySignIn {
    pub challenge_id: Uuid,
    /// The asserted credential's `toJSON()`.
    pub credential: serde_json::Value,
    // As at login (`body` or `cookie`); undocumented for the reason given there.
    pub token_delivery: Option<TokenDelivery>,
}

#[derive(ApiResponse)]
pub enum CreationOptions {
    /// Creation options; the registration state waits (5 minutes) in the database.
    #[oai(status = 200)]
    Ok(Json<PasskeyCreationOptions>, #[oai(header = "Cache-Control")] String),
}

#[derive(ApiResponse)]
pub enum Registered {
    /// The passkey is registered.
    #[oai(status = 201)]
    Created(Json<PasskeyInfo>),
}

#[derive(ApiResponse)]
pub enum Listed {
    /// The caller's passkeys, oldest first.
    #[oai(status = 200)]
    Ok(Json<PasskeyList>),
}

#[derive(ApiResponse)]
pub enum Removed {
    /// The passkey no longer signs anyone in.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum SignInOptions {
    /// Request options, and the id of the challenge (single use, 5 minutes).
    #[oai(status = 200)]
    Ok(Json<PasskeySignInOptions>, #[oai(header = "Cache-Control")] String),
}

type Data<'a> = poem::web::Data<&'a AppState>;

#[OpenApi(tag = "ApiTags::Mfa")]
impl PasskeysApi {
    /// Start registering a passkey
    ///
    /// Needs the password (accounts without one: `{}` within five minutes of
    /// logging in). Returns `{"publicKey": …}` for
    /// `PublicKeyCredential.parseCreationOptionsFromJSON()`: a resident
    /// (discoverable) key, the user verified. Errors: 401 `invalid_token`; 403
    /// `invalid_current_password`, `reauthentication_required`; 404
    /// `passkeys_not_configured`; 429 `rate_limited`.
    #[oai(path = "/v1/users/me/passkeys/register/start", method = "post", operation_id = "startPasskeyRegistration")]
    async fn register_start(
        &self,
        state: Data<'_>,
        auth: BearerAuth,
        body: Json<ReauthenticateRequest>,
    ) -> Result<CreationOptions, ApiError> {
        let password = body.0.password.map(Password::new);
        let public_key = passkeys::register_start(&state, &auth.0, password.as_ref()).await?;
        Ok(CreationOptions::Ok(Json(PasskeyCreationOptions { public_key }), super::no_store()))
    }

    /// Finish registering a passkey
    ///
    /// With the browser's `credential.toJSON()` and a name. Errors: 400
    /// `invalid_passkey_challenge` (no registration started in the last five
    /// minutes, or it was finished), `invalid_passkey_name`; 401
    /// `invalid_token`, `invalid_passkey` (the credential did not verify, or
    /// is registered already); 404 `passkeys_not_configured`.
    #[oai(path = "/v1/users/me/passkeys/register/finish", method = "post", operation_id = "finishPasskeyRegistration")]
    async fn register_finish(
        &self,
        state: Data<'_>,
        req: &Request,
        auth: BearerAuth,
        body: Json<PasskeyRegistration>,
    ) -> Result<Registered, ApiError> {
        let Json(body) = body;
        let info = passkeys::register_finish(&state, &auth.0, body.credential, &body.name, &client_info(req)).await?;
        Ok(Registered::Created(Json(info)))
    }

    /// My passkeys
    ///
    /// Errors: 401 `invalid_token`.
    #[oai(path = "/v1/users/me/passkeys", method = "get", operation_id = "listPasskeys")]
    async fn list(&self, state: Data<'_>, auth: BearerAuth) -> Result<Listed, ApiError> {
        Ok(Listed::Ok(Json(PasskeyList { items: passkeys::list(&state, &auth.0).await? })))
    }

    /// Remove a passkey
    ///
    /// Needs the password (accounts without one: `{}` within five minutes of
    /// logging in). Errors: 401 `invalid_token`; 403
    /// `invalid_current_password`, `reauthentication_required`; 404
    /// `passkey_not_found`.
    #[oai(path = "/v1/users/me/passkeys/:id", method = "delete", operation_id = "removePasskey")]
    async fn remove(
        &self,
        state: Data<'_>,
        req: &Request,
        auth: BearerAuth,
        /// The passkey id (from `GET /v1/users/me/passkeys`).
        id: Path<Uuid>,
        body: Json<ReauthenticateRequest>,
    ) -> Result<Removed, ApiError> {
        let password = body.0.password.map(Password::new);
        passkeys::remove(&state, &auth.0, id.0, password.as_ref(), &client_info(req)).await?;
        Ok(Removed::NoContent)
    }

    /// Start a passwordless sign-in with a passkey
    ///
    /// `{}` → a `challenge_id` and `{"publicKey": …}` for
    /// `PublicKeyCredential.parseRequestOptionsFromJSON()`, listing no
    /// credential: the authenticator offers the passkeys it holds for this
    /// site. Errors: 404 `passkeys_not_configured`; 429 `rate_limited` (per
    /// client IP, as logins).
    #[oai(path = "/v1/auth/passkey/start", method = "post", operation_id = "startPasskeySignIn")]
    async fn sign_in_start(
        &self,
        state: Data<'_>,
        req: &Request,
        #[allow(unused_variables)] body: Json<PasskeySignInStart>,
    ) -> Result<SignInOptions, ApiError> {
        let started = passkeys::sign_in_start(&state, &client_info(req)).await?;
        let body = PasskeySignInOptions { challenge_id: started.challenge_id, public_key: started.public_key };
        Ok(SignInOptions::Ok(Json(body), super::no_store()))
    }

    /// Finish a passwordless sign-in with a passkey
    ///
    /// The `challenge_id` and the browser's `credential.toJSON()` (and
    /// `token_delivery` as at login) → the token response of a new session,
    /// its `amr` `["hwk", "mfa"]`. Errors: 400 `invalid_passkey_challenge`
    /// (unknown, used or expired); 401 `invalid_passkey` (unknown or removed
    /// credential, a bad signature, a signature counter that went back); 403
    /// `invalid_origin`; 404 `passkeys_not_configured`.
    #[oai(path = "/v1/auth/passkey/finish", method = "post", operation_id = "finishPasskeySignIn")]
    async fn sign_in_finish(
        &self,
        state: Data<'_>,
        req: &Request,
        body: Json<PasskeySignIn>,
    ) -> Result<TokenIssued, ApiError> {
        let Json(body) = body;
        let mode = body.token_delivery.unwrap_or_default();
        if mode == TokenDelivery::Cookie {
            state.browser.check_origin_if_sent(req)?;
        }
        let tokens = passkeys::sign_in_finish(&state, body.challenge_id, body.credential, client_info(req)).await?;
        Ok(TokenIssued::new(deliver(&state, req, tokens, mode)))
    }
}
