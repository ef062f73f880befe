//! The simulated clients of each scenario.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, StatusCode};

use crate::load::{Client, request};

/// Sends the same GET again and again.
pub struct Getter {
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub expect: StatusCode,
}

impl Client for Getter {
    fn request(&mut self) -> Request<Full<Bytes>> {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        request("GET", &self.path, None, &headers)
    }

    fn response(&mut self, status: StatusCode, _: &[u8]) -> Result<(), String> {
        if status == self.expect { Ok(()) } else { Err(format!("{} answered {status}", self.path)) }
    }
}

/// Holds one session and always presents the refresh token it was last given.
pub struct Refresher {
    pub token: String,
}

/// The one field a refresher keeps; the rest of the answer is skipped unparsed.
#[derive(serde::Deserialize)]
struct Refreshed<'a> {
    #[serde(borrow)]
    refresh_token: &'a str,
}

pub fn refresh_token_of(body: &[u8]) -> Result<String, String> {
    let answer: Refreshed = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(answer.refresh_token.to_string())
}

impl Client for Refresher {
    fn request(&mut self) -> Request<Full<Bytes>> {
        request("POST", "/v1/auth/refresh", Some(format!(r#"{{"refresh_token":"{}"}}"#, self.token)), &[])
    }

    fn response(&mut self, status: StatusCode, body: &[u8]) -> Result<(), String> {
        if status != StatusCode::OK {
            return Err(format!("refresh answered {status}: {}", String::from_utf8_lossy(body)));
        }
        self.token = refresh_token_of(body)?;
        Ok(())
    }
}

/// Logs in with its own account, again and again.
pub struct LoggerIn {
    pub body: String,
}

impl LoggerIn {
    pub fn new(email: &str, password: &str) -> Self {
        Self { body: format!(r#"{{"email":"{email}","password":"{password}"}}"#) }
    }
}

impl Client for LoggerIn {
    fn request(&mut self) -> Request<Full<Bytes>> {
        request("POST", "/v1/auth/login", Some(self.body.clone()), &[])
    }

    fn response(&mut self, status: StatusCode, body: &[u8]) -> Result<(), String> {
        if status == StatusCode::OK {
            Ok(())
        } else {
            Err(format!("login answered {status}: {}", String::from_utf8_lossy(body)))
        }
    }
}
