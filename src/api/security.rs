use poem::{IntoResponse, Request};
use poem_openapi::{SecurityScheme, auth::Bearer};

use super::ApiError;
use crate::{
    AppState,
    session::live::{self, LiveUser},
};

// The guard checks the token and that its session is still live, and hands
// the operation the `LiveUser`: every use case of a signed-in user takes
// one, so no endpoint can skip the check.
/// A latchkey access token: `Authorization: Bearer <jwt>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(pub LiveUser);

/// A bearer access token, or none (the operation then looks for another
/// credential, such as the refresh cookie).
#[derive(SecurityScheme)]
pub enum OptionalBearer {
    Bearer(BearerAuth),
    #[oai(fallback)]
    Anonymous,
}

async fn check_bearer(req: &Request, bearer: Bearer) -> poem::Result<LiveUser> {
    let state = req.data::<AppState>().expect("AppState is attached to every request");
    let refuse = |answer: ApiError| poem::Error::from_response(answer.into_response());
    let now = state.clock.now().timestamp();
    let claims = state.verified.verify(&state.keys.load(), &state.tokens, &bearer.token, now).map_err(|e| {
        tracing::debug!(error = %e, "access token rejected");
        refuse(ApiError::invalid_token())
    })?;
    match live::check(state, &claims).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(refuse(ApiError::session_ended())),
        Err(e) => Err(refuse(ApiError::internal(e.into()))),
    }
}
