//! The demo single page app at `/demo`: three files compiled into the
//! binary, no build step, nothing loaded from elsewhere. Every path under
//! `/demo` that is not one of its files answers with the page, which routes
//! itself (`/demo/verify-email?token=…` is where mailed links land when
//! `LATCHKEY_APP_URL` is left at its default).

use poem::{Endpoint, Request, Response, endpoint::make_sync, http::StatusCode};

const INDEX: &str = include_str!("../demo/index.html");
const SCRIPT: &str = include_str!("../demo/app.js");
const STYLE: &str = include_str!("../demo/style.css");

/// Scripts and styles from latchkey only; no inline code; fetches to latchkey only.
/// Images may also be `data:` URLs: the TOTP QR code comes as one.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn routes() -> impl Endpoint {
    make_sync(|req: Request| {
        let (body, content_type) = match req.uri().path().trim_end_matches('/').rsplit('/').next() {
            Some("app.js") => (SCRIPT, "text/javascript; charset=utf-8"),
            Some("style.css") => (STYLE, "text/css; charset=utf-8"),
            _ => (INDEX, "text/html; charset=utf-8"),
        };
        Response::builder()
            .status(StatusCode::OK)
            .content_type(content_type)
            .header("Content-Security-Policy", CSP)
            .header("X-Content-Type-Options", "nosniff")
            // Its URLs can carry one-time tokens.
            .header("Referrer-Policy", "no-referrer")
            .header("Cache-Control", "no-cache")
            .body(body)
    })
}
