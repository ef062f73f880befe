use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use super::ApiError;
use super::ApiTags;
use crate::{AppState, store};

#[derive(Default)]
pub struct HealthApi;

/// A probe result.
#[derive(Debug, Object)]
pub struct Health {
    /// `ok` when healthy.
    pub status: String,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// Healthy.
    #[oai(status = 200)]
    Ok(Json<Health>),
}

fn ok() -> HealthResponse {
    HealthResponse::Ok(Json(Health { status: "ok".into() }))
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness
    ///
    /// 200 while the process serves requests; touches no dependency.
    #[oai(path = "/healthz", method = "get", operation_id = "getHealth")]
    async fn healthz(&self) -> HealthResponse {
        ok()
    }

    /// Readiness
    ///
    /// 200 when the database answers, 503 `service_unavailable` when it does not.
    #[oai(path = "/readyz", method = "get", operation_id = "getReadiness")]
    async fn readyz(&self, state: poem::web::Data<&AppState>) -> Result<HealthResponse, ApiError> {
        if store::ping(&state.db).await { Ok(ok()) } else { Err(ApiError::unavailable()) }
    }
}
