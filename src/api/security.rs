use poem::{IntoResponse, Request};
use poem_openapi::{SecurityScheme, auth::Bearer};

use crate::{AppState, error::ApiError, token::AccessClaims};

/// A latchkey access token: `Authorization: Bearer <jwt>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(pub AccessClaims);

/// A bearer access token, or none (the operation then looks for another
/// credential, such as the refresh cookie).
#[derive(SecurityScheme)]
pub enum OptionalBearer {
    Bearer(BearerAuth),
    #[oai(fallback)]
    Anonymous,
}

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<AccessClaims> {
    let state = req.data::<AppState>().expect("AppState is attached to every request");
    let now = chrono::Utc::now().timestamp();
    state.verified.verify(&state.keys.load(), &state.tokens, &bearer.token, now).map_err(|e| {
        tracing::debug!(error = %e, "access token rejected");
        poem::Error::from_response(
            ApiError::unauthorized("invalid_token", "The access token is invalid or expired.").into_response(),
        )
    })
}
