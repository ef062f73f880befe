//! Browser (SPA) mode: the refresh token travels in an `HttpOnly` cookie
//! instead of the JSON body, cookie-authenticated state changes need a CSRF
//! token and an allowed `Origin`, and CORS lets only the configured origins
//! call with credentials.
//!
//! The CSRF token is double-submit and bound to the session: it is an HMAC of
//! the session's current refresh token, sent both as a readable cookie and in
//! the token response, and must come back in `X-CSRF-Token`. A request is
//! accepted only if header, cookie and the HMAC of the refresh cookie agree,
//! so a token planted in the cookie by anyone else, or one from another
//! session, is worthless.

pub mod cookies;
pub mod cors;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use poem::Request;
use ring::hmac;

use crate::config::{Cookies, Server};

pub const CSRF_HEADER: &str = "x-csrf-token";

/// The browser-facing settings, resolved once at start-up.
pub struct Browser {
    pub secure: bool,
    same_site: &'static str,
    /// `LATCHKEY_CORS_ORIGINS`: may call with credentials, from anywhere.
    pub cors_origins: Vec<String>,
    /// Where latchkey's own pages (the demo, Swagger UI) are served from.
    own_origins: Vec<String>,
    csrf_key: hmac::Key,
}

impl Browser {
    /// `refresh_secret` is the key ring's secret; the CSRF key is derived from it.
    /// The cookie settings are validated already (`config`).
    pub fn new(config: &Cookies, server: &Server, refresh_secret: &hmac::Key) -> Self {
        Self {
            secure: config.cookie_secure,
            same_site: match config.cookie_same_site.as_str() {
                "lax" => "Lax",
                "none" => "None",
                _ => "Strict",
            },
            cors_origins: config.cors_origins().unwrap_or_default(),
            own_origins: server.own_origins(),
            csrf_key: crate::secret::derive_key(refresh_secret, "latchkey csrf key v1"),
        }
    }

    /// `__Host-` cookies must be `Secure` with `Path=/`; without `Secure`
    /// the prefix is not allowed, and the refresh cookie is limited to the
    /// paths that read it.
    pub fn refresh_cookie(&self) -> &'static str {
        if self.secure { "__Host-lk_refresh" } else { "lk_refresh" }
    }

    pub fn csrf_cookie(&self) -> &'static str {
        if self.secure { "__Host-lk_csrf" } else { "lk_csrf" }
    }

    fn refresh_path(&self) -> &'static str {
        if self.secure { "/" } else { "/v1/auth" }
    }

    /// The CSRF token that goes with `refresh_token`.
    pub fn csrf_token(&self, refresh_token: &str) -> String {
        B64.encode(hmac::sign(&self.csrf_key, refresh_token.as_bytes()))
    }

    /// The two cookies of a session in cookie mode.
    /// `csrf` is `csrf_token(refresh_token)`, which the caller also sends in the body.
    pub fn session_cookies(&self, refresh_token: &str, csrf: &str, max_age: u64) -> [String; 2] {
        [
            self.cookie(self.refresh_cookie(), refresh_token, self.refresh_path(), max_age, true, self.same_site),
            self.cookie(self.csrf_cookie(), csrf, "/", max_age, false, self.same_site),
        ]
    }

    /// Cookies that delete both.
    pub fn cleared_cookies(&self) -> [String; 2] {
        [
            self.cookie(self.refresh_cookie(), "", self.refresh_path(), 0, true, self.same_site),
            self.cookie(self.csrf_cookie(), "", "/", 0, false, self.same_site),
        ]
    }

    fn cookie(&self, name: &str, value: &str, path: &str, max_age: u64, http_only: bool, same_site: &str) -> String {
        let mut cookie = format!("{name}={value}; Path={path}; Max-Age={max_age}; SameSite={same_site}");
        if http_only {
            cookie.push_str("; HttpOnly");
        }
        if self.secure {
            cookie.push_str("; Secure");
        }
        cookie
    }

    /// Binds a Google sign-in to the browser that started it: the `state`
    /// sent to the provider must come back with this cookie. `SameSite=Lax`,
    /// since the return from the provider is a cross-site navigation.
    pub fn sign_in_cookie(&self) -> &'static str {
        if self.secure { "__Host-lk_signin" } else { "lk_signin" }
    }

    fn sign_in_path(&self) -> &'static str {
        if self.secure { "/" } else { "/v1/auth/oauth" }
    }

    /// The cookie that remembers a started sign-in's `state` for 10 minutes.
    pub fn sign_in_cookie_line(&self, state: &str) -> String {
        self.cookie(self.sign_in_cookie(), state, self.sign_in_path(), 600, true, "Lax")
    }

    /// The cookie line that deletes it.
    pub fn sign_in_cookie_cleared(&self) -> String {
        self.cookie(self.sign_in_cookie(), "", self.sign_in_path(), 0, true, "Lax")
    }

    /// Whether `origin` may make cookie-authenticated requests.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.cors_origins.iter().chain(&self.own_origins).any(|o| o == origin)
    }

    /// A request that sets session cookies (a cookie-mode login): refused
    /// when a browser says it comes from an origin not allowed, so another
    /// site cannot log a visitor into an account of its choosing.
    pub fn check_origin_if_sent(&self, req: &Request) -> Result<(), Refused> {
        match header(req, "origin") {
            Some(origin) if !self.origin_allowed(origin) => Err(Refused::Origin),
            _ => Ok(()),
        }
    }

    /// A cookie-authenticated state change: an allowed `Origin`, and an
    /// `X-CSRF-Token` equal to the CSRF cookie and bound to `refresh_token`.
    pub fn check_cookie_request(&self, req: &Request, refresh_token: &str) -> Result<(), Refused> {
        match header(req, "origin") {
            Some(origin) if self.origin_allowed(origin) => {}
            _ => return Err(Refused::Origin),
        }
        let sent = header(req, CSRF_HEADER).unwrap_or_default();
        let cookie = cookies::get(req, self.csrf_cookie()).unwrap_or_default();
        let bound =
            B64.decode(sent).is_ok_and(|tag| hmac::verify(&self.csrf_key, refresh_token.as_bytes(), &tag).is_ok());
        if sent.is_empty() || sent != cookie || !bound {
            return Err(Refused::CsrfToken);
        }
        Ok(())
    }
}

/// Why a browser request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Missing, or not an allowed origin.
    Origin,
    /// `X-CSRF-Token` missing, not the CSRF cookie, or not this session's.
    CsrfToken,
}

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}
