//! Every request is observed here, outside everything else: it gets its
//! request id (in the span of its log lines and in `X-Request-Id`), and is
//! counted and timed under its OpenAPI route template. `/metrics` is
//! answered here too, unless it has a listener of its own.

use std::{collections::HashMap, sync::OnceLock, time::Instant};

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{HeaderValue, Method, StatusCode},
};
use tracing::Instrument;

use crate::{
    AppState,
    observe::{metrics, request_id},
};

/// Where metrics are served.
pub const METRICS_PATH: &str = "/metrics";

/// Path templates, from the OpenAPI document: `/v1/sessions/{id}` matches
/// any one segment where the braces are.
struct Routes {
    fixed: HashMap<&'static str, &'static str>,
    templated: Vec<(Vec<&'static str>, &'static str)>,
}

fn routes() -> &'static Routes {
    static ROUTES: OnceLock<Routes> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let spec: serde_json::Value = serde_json::from_str(&super::spec_json()).unwrap_or_default();
        let mut routes = Routes { fixed: HashMap::new(), templated: Vec::new() };
        let paths = spec["paths"].as_object().map(|p| p.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        for path in paths.into_iter().chain([METRICS_PATH.to_string()]) {
            let path: &'static str = Box::leak(path.into_boxed_str());
            if path.contains('{') {
                routes.templated.push((path.split('/').collect(), path));
            } else {
                routes.fixed.insert(path, path);
            }
        }
        routes
    })
}

/// The label of `path`: its route template, a fixed name for the pages
/// outside the API, or `unmatched` — never the path as sent.
pub fn route_of(path: &str) -> &'static str {
    let routes = routes();
    if let Some(route) = routes.fixed.get(path) {
        return route;
    }
    // Segment by segment, without collecting the path: status lists come this way on every fetch.
    let templated = routes.templated.iter().find(|(template, _)| {
        let mut sent = path.split('/');
        let each = template
            .iter()
            .all(|t| sent.next().is_some_and(|s| if t.starts_with('{') { !s.is_empty() } else { *t == s }));
        each && sent.next().is_none()
    });
    if let Some((_, route)) = templated {
        return route;
    }
    match path {
        "/openapi.json" => "/openapi.json",
        p if p == "/docs" || p.starts_with("/docs/") => "/docs",
        p if p == "/demo" || p.starts_with("/demo/") => "/demo",
        _ => "unmatched",
    }
}

fn method_of(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The outermost layer of the application.
pub async fn observe<E: Endpoint>(ep: std::sync::Arc<E>, req: Request, state: AppState) -> poem::Result<Response> {
    let started = Instant::now();
    let incoming = req.headers().get(request_id::HEADER).and_then(|v| v.to_str().ok());
    let id = request_id::choose(incoming);
    let (route, method) = (route_of(req.uri().path()), method_of(req.method()));
    let span = tracing::info_span!("request", request_id = %id);
    let serves_metrics = state.metrics.is_some() && state.config.server.metrics_bind.is_none();
    let work = async {
        if serves_metrics && req.uri().path() == METRICS_PATH && req.method() == Method::GET {
            return metrics_page(&state).await;
        }
        match ep.call(req).await {
            Ok(resp) => resp.into_response(),
            Err(err) => err.into_response(),
        }
    };
    let header = HeaderValue::from_str(&id);
    let mut resp = request_id::scope(id, work.instrument(span)).await;
    if let Ok(value) = header {
        resp.headers_mut().insert(request_id::HEADER, value);
    }
    if state.metrics.is_some() {
        metrics::http_request(route, method, resp.status().as_u16(), started.elapsed().as_secs_f64());
    }
    Ok(resp)
}

/// The exposition page, with the gauges read now.
pub async fn metrics_page(state: &AppState) -> Response {
    let Some(handle) = &state.metrics else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (idle, in_use) = crate::store::pool_stats(&state.db);
    metrics::db_pool(idle, in_use);
    match crate::mail::worker::queue_depth(state).await {
        Ok(depth) => metrics::mail_queue_depth(depth),
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "metrics: cannot count the mail queue"),
    }
    Response::builder()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .header("cache-control", "no-store")
        .body(metrics::render(handle))
}

#[cfg(test)]
mod tests {
    use super::route_of;

    #[test]
    fn routes_are_templates_never_raw_paths() {
        assert_eq!(route_of("/v1/auth/login"), "/v1/auth/login");
        assert_eq!(route_of("/v1/sessions/0190c7a2-0000-7000-8000-000000000000"), "/v1/sessions/{id}");
        assert_eq!(route_of("/v1/status-lists/anything"), "/v1/status-lists/{id}");
        assert_eq!(route_of("/v1/sessions/"), "unmatched");
        assert_eq!(route_of("/v1/users/ada@example.com"), "unmatched");
        assert_eq!(route_of("/docs/swagger.js"), "/docs");
        assert_eq!(route_of("/metrics"), "/metrics");
    }
}
