use poem::Request;
use poem_openapi::{ApiResponse, OpenApi, payload::Json};

use super::{
    ApiError, ApiTags, BearerAuth, client_info,
    types::{DisableTotpRequest, ReauthenticateRequest, RecoveryCodes, SecondFactorRequest, TotpConfirmRequest},
};
use crate::{
    AppState,
    auth::factors::{self, MfaStatus, TotpEnrollment},
    secret::Password,
};

#[derive(Default)]
pub struct MfaApi;

#[derive(ApiResponse)]
pub enum EnrollmentResponse {
    /// The new secret (not live until confirmed). Carries `Cache-Control: no-store`.
    #[oai(status = 200)]
    Ok(Json<TotpEnrollment>, #[oai(header = "Cache-Control")] String),
}

#[derive(ApiResponse)]
pub enum RecoveryCodesResponse {
    /// The recovery codes, shown this once. Carries `Cache-Control: no-store`.
    #[oai(status = 200)]
    Ok(Json<RecoveryCodes>, #[oai(header = "Cache-Control")] String),
}

impl RecoveryCodesResponse {
    fn new(codes: Vec<String>) -> Self {
        Self::Ok(Json(RecoveryCodes { recovery_codes: codes }), super::no_store())
    }
}

#[derive(ApiResponse)]
pub enum StatusResponse {
    /// The account's second factors.
    #[oai(status = 200)]
    Ok(Json<MfaStatus>),
}

#[derive(ApiResponse)]
pub enum Removed {
    /// TOTP and the recovery codes are gone; logins ask for the password only.
    #[oai(status = 204)]
    NoContent,
}

type Data<'a> = poem::web::Data<&'a AppState>;

#[OpenApi(prefix_path = "/v1/users/me/mfa", tag = "ApiTags::Mfa")]
impl MfaApi {
    /// My second factors
    ///
    /// Errors: 401 `invalid_token`.
    #[oai(path = "/", method = "get", operation_id = "getMfaStatus")]
    async fn status(&self, state: Data<'_>, auth: BearerAuth) -> Result<StatusResponse, ApiError> {
        Ok(StatusResponse::Ok(Json(factors::status(&state, &auth.0).await?)))
    }

    /// Start TOTP enrollment
    ///
    /// Needs the password (accounts without one: `{}` within five minutes of
    /// logging in). Returns a new secret, its `otpauth://` URI and a QR code;
    /// nothing changes for login until `POST /v1/users/me/mfa/totp/confirm`.
    /// Calling again replaces an unconfirmed secret. Errors: 401
    /// `invalid_token`; 403 `invalid_current_password`,
    /// `reauthentication_required`; 409 `totp_already_enabled`; 429
    /// `rate_limited` (password checks count toward the failed-login limit).
    #[oai(path = "/totp", method = "post", operation_id = "enrollTotp")]
    async fn enroll(
        &self,
        state: Data<'_>,
        auth: BearerAuth,
        body: Json<ReauthenticateRequest>,
    ) -> Result<EnrollmentResponse, ApiError> {
        let password = body.0.password.map(Password::new);
        let enrollment = factors::enroll(&state, &auth.0, password.as_ref()).await?;
        Ok(EnrollmentResponse::Ok(Json(enrollment), super::no_store()))
    }

    /// Confirm TOTP enrollment
    ///
    /// The first code from the app turns TOTP on and returns 10 recovery
    /// codes, shown this once. From then on a login with the password answers
    /// 403 `mfa_required`. Errors: 400 `invalid_mfa_code`; 401
    /// `invalid_token`; 404 `totp_not_enrolled` (no pending enrollment); 429
    /// `rate_limited` (codes count toward the failed-login limit).
    #[oai(path = "/totp/confirm", method = "post", operation_id = "confirmTotp")]
    async fn confirm(
        &self,
        state: Data<'_>,
        req: &Request,
        auth: BearerAuth,
        body: Json<TotpConfirmRequest>,
    ) -> Result<RecoveryCodesResponse, ApiError> {
        let codes = factors::confirm(&state, &auth.0, &body.0.code, &client_info(req)).await?;
        Ok(RecoveryCodesResponse::new(codes))
    }

    /// Turn TOTP off
    ///
    /// Needs the password (accounts without one: a login in the last five
    /// minutes) and a second factor that passes now: a code from the app or a
    /// recovery code. Removes the secret and every recovery code. Errors: 400
    /// `invalid_mfa_code`; 401 `invalid_token`; 403
    /// `invalid_current_password`, `reauthentication_required`; 404
    /// `totp_not_enrolled`; 429 `rate_limited`.
    #[oai(path = "/totp", method = "delete", operation_id = "disableTotp")]
    async fn disable(
        &self,
        state: Data<'_>,
        req: &Request,
        auth: BearerAuth,
        body: Json<DisableTotpRequest>,
    ) -> Result<Removed, ApiError> {
        let Json(body) = body;
        let password = body.password.map(Password::new);
        factors::disable(&state, &auth.0, password.as_ref(), &body.code, &client_info(req)).await?;
        Ok(Removed::NoContent)
    }

    /// New recovery codes
    ///
    /// With a second factor that passes now (a code from the app, or a
    /// recovery code), returns a fresh set of 10; the old ones stop working.
    /// Errors: 400 `invalid_mfa_code`; 401 `invalid_token`; 404
    /// `totp_not_enrolled`; 429 `rate_limited`.
    #[oai(path = "/recovery-codes", method = "post", operation_id = "regenerateRecoveryCodes")]
    async fn regenerate(
        &self,
        state: Data<'_>,
        req: &Request,
        auth: BearerAuth,
        body: Json<SecondFactorRequest>,
    ) -> Result<RecoveryCodesResponse, ApiError> {
        let codes = factors::regenerate(&state, &auth.0, &body.0.code, &client_info(req)).await?;
        Ok(RecoveryCodesResponse::new(codes))
    }
}
