//! Reading the `Cookie` header, and letting handlers add `Set-Cookie` lines
//! to whatever response they end up returning (errors included).

use std::sync::{Arc, Mutex};

use poem::{Endpoint, IntoResponse, Request, Response, http::HeaderValue};

/// The value of cookie `name` sent with the request.
pub fn get<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// `Set-Cookie` lines queued by the handler of this request.
#[derive(Clone, Default)]
struct Outgoing(Arc<Mutex<Vec<String>>>);

/// Queues a `Set-Cookie` line for the response to `req`.
pub fn set(req: &Request, cookie: String) {
    if let Some(out) = req.extensions().get::<Outgoing>() {
        out.0.lock().expect("cookie queue poisoned").push(cookie);
    }
}

/// Middleware: gives each request under `/v1/auth` (the only handlers that
/// set cookies) a cookie queue and writes it out. Other paths (JWKS above
/// all) pay nothing.
pub async fn write_queued<E: Endpoint>(ep: Arc<E>, mut req: Request) -> poem::Result<Response> {
    if !req.uri().path().starts_with("/v1/auth/") {
        return ep.call(req).await.map(IntoResponse::into_response);
    }
    let out = Outgoing::default();
    req.extensions_mut().insert(out.clone());
    let mut resp = match ep.call(req).await {
        Ok(resp) => resp.into_response(),
        Err(err) => err.into_response(),
    };
    for cookie in out.0.lock().expect("cookie queue poisoned").drain(..) {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            resp.headers_mut().append(poem::http::header::SET_COOKIE, value);
        }
    }
    Ok(resp)
}
