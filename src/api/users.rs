use poem_openapi::{ApiResponse, OpenApi, payload::Json};

use super::{ApiTags, BearerAuth, types::User};
use crate::{AppState, auth::account, error::ApiError};

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
        match account::current(&state, &auth.0).await {
            Ok(Some(user)) => Ok(MeResponse::Ok(Json(user.into()))),
            Ok(None) => Err(ApiError::unauthorized("invalid_token", "The session of this token has ended.")),
            Err(e) => Err(ApiError::internal(e)),
        }
    }
}
