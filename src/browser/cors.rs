//! CORS: credentialed access for `LATCHKEY_CORS_ORIGINS` only. Any other
//! origin gets no CORS headers (its scripts cannot read the answer) and its
//! preflights are refused. The discovery documents (`/.well-known/…`) and the status lists are
//! public keys and metadata: any origin may read them, without credentials.

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Request, Response,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
};

use super::Browser;
use crate::error::problem_response;

const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE";
const ALLOW_HEADERS: &str = "Authorization, Content-Type, X-CSRF-Token, If-None-Match";
const EXPOSE_HEADERS: &str =
    "Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, WWW-Authenticate, ETag, Location";
/// How long a browser may cache a preflight answer.
const MAX_AGE_SECS: &str = "600";

enum Access {
    Credentialed,
    Public,
    Denied,
}

fn access(browser: &Browser, origin: &HeaderValue, path: &str) -> Access {
    match origin.to_str() {
        Ok(o) if browser.cors_origins.iter().any(|allowed| allowed == o) => Access::Credentialed,
        _ if path.starts_with("/.well-known/") || path.starts_with("/v1/status-lists") => Access::Public,
        _ => Access::Denied,
    }
}

/// The CORS headers of an answer to a request (not a preflight) that
/// carried `origin`, or none.
pub fn decorate(resp: &mut Response, browser: &Browser, origin: Option<&HeaderValue>, path: &str) {
    match origin {
        Some(origin) => allow(resp.headers_mut(), &access(browser, origin, path), origin.clone()),
        // Answers differ by origin: shared caches must key on it.
        None => {
            resp.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

pub async fn handle<E: Endpoint>(ep: Arc<E>, req: Request, browser: Arc<Browser>) -> poem::Result<Response> {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        let mut resp = ep.call(req).await.map(IntoResponse::into_response)?;
        decorate(&mut resp, &browser, None, "");
        return Ok(resp);
    };
    let access = access(&browser, &origin, req.uri().path());
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut resp = match access {
            Access::Denied => {
                let detail = "This origin may not call latchkey (LATCHKEY_CORS_ORIGINS).";
                return Ok(problem_response(StatusCode::FORBIDDEN, "invalid_origin", detail));
            }
            _ => Response::builder().status(StatusCode::NO_CONTENT).finish(),
        };
        let headers = resp.headers_mut();
        allow(headers, &access, origin);
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE_SECS));
        return Ok(resp);
    }
    let mut resp = match ep.call(req).await {
        Ok(resp) => resp.into_response(),
        Err(err) => err.into_response(),
    };
    allow(resp.headers_mut(), &access, origin);
    Ok(resp)
}

fn allow(headers: &mut HeaderMap, access: &Access, origin: HeaderValue) {
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    match access {
        Access::Credentialed => {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
        }
        Access::Public => {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("ETag"));
        }
        Access::Denied => {}
    }
}
