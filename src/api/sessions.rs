use poem::Request;
use poem_openapi::{ApiResponse, OpenApi, param::Path, payload::Json};
use uuid::Uuid;

use super::{
    ApiError, ApiTags, BearerAuth, client_info,
    types::{RevokedSessions, SessionList},
};
use crate::{AppState, session::manage};

#[derive(Default)]
pub struct SessionsApi;

#[derive(ApiResponse)]
pub enum SessionsResponse {
    /// The caller's live sessions, newest first.
    #[oai(status = 200)]
    Ok(Json<SessionList>),
}

#[derive(ApiResponse)]
pub enum SessionRevoked {
    /// The session is over: its refresh token stops working at once.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum OthersRevoked {
    /// Every other session is over.
    #[oai(status = 200)]
    Ok(Json<RevokedSessions>),
}

type Data<'a> = poem::web::Data<&'a AppState>;

#[OpenApi(prefix_path = "/v1/sessions", tag = "ApiTags::Sessions")]
impl SessionsApi {
    /// List my sessions
    ///
    /// Every live session of the signed-in user: when and how it started, its
    /// last refresh, IP address and user agent; `current` marks the one making
    /// this request. Errors: 401 `invalid_token`.
    #[oai(path = "/", method = "get", operation_id = "listSessions")]
    async fn list(&self, state: Data<'_>, auth: BearerAuth) -> Result<SessionsResponse, ApiError> {
        let sessions = manage::list(&state, &auth.0).await?;
        Ok(SessionsResponse::Ok(Json(SessionList { sessions })))
    }

    /// End a session
    ///
    /// Revokes one of the caller's sessions (the current one too). Its refresh
    /// token fails from now on, on every instance. Errors: 401 `invalid_token`;
    /// 404 `session_not_found` (no such live session of the caller's; another
    /// user's session is answered the same way).
    #[oai(path = "/:id", method = "delete", operation_id = "revokeSession")]
    async fn revoke(
        &self,
        state: Data<'_>,
        req: &Request,
        auth: BearerAuth,
        /// The session id (from `GET /v1/sessions`).
        id: Path<Uuid>,
    ) -> Result<SessionRevoked, ApiError> {
        if manage::revoke(&state, &auth.0, id.0, &client_info(req)).await? {
            Ok(SessionRevoked::NoContent)
        } else {
            Err(ApiError::not_found("session_not_found", "You have no live session with this id."))
        }
    }

    /// End every other session
    ///
    /// Revokes all of the caller's sessions except the current one.
    /// Errors: 401 `invalid_token`.
    #[oai(path = "/revoke-others", method = "post", operation_id = "revokeOtherSessions")]
    async fn revoke_others(&self, state: Data<'_>, req: &Request, auth: BearerAuth) -> Result<OthersRevoked, ApiError> {
        let revoked = manage::revoke_others(&state, &auth.0, &client_info(req)).await?;
        Ok(OthersRevoked::Ok(Json(RevokedSessions { revoked })))
    }
}
