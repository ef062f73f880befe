//! Access tokens: RFC 9068-shaped JWTs, signed by the active key and verified
//! with the algorithm pinned by the key, never by the token header.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::keyring::KeyRing;
use crate::store::status::Slot;

pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of an access token (RFC 9068).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: Uuid,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: Uuid,
    pub sid: Uuid,
    pub client_id: String,
    pub email: String,
    pub email_verified: bool,
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusClaim>,
}

/// Who a token is for, and the session it belongs to.
#[derive(Debug, Clone)]
pub struct Subject {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub email: String,
    pub email_verified: bool,
    /// The session's `amr` values, space-separated (`pwd`, `pwd otp mfa`).
    pub method: String,
    /// The session's status-list slot.
    pub status: Option<Slot>,
}

/// The `status` claim (Token Status List): where a resource server looks up
/// whether the token's session has ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusClaim {
    pub status_list: StatusListReference,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusListReference {
    pub idx: u32,
    pub uri: String,
}

/// The URI of a status list: `<issuer>/v1/status-lists/<id>`.
pub fn status_list_uri(issuer: &str, list_id: Uuid) -> String {
    format!("{issuer}/v1/status-lists/{list_id}")
}

/// What is needed to issue and check tokens, from the configuration.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub client_id: String,
    pub ttl_secs: i64,
    pub leeway_secs: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessTokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token type is not at+jwt")]
    WrongType,
    /// RFC 7515 §4.1.11: a header parameter the token says must be
    /// understood, and latchkey understands none.
    #[error("the token has critical header parameters")]
    Critical,
    #[error("the token was not signed by a known key")]
    UnknownKey,
    #[error("the token has expired or is not valid yet")]
    Expired,
    #[error("the token is invalid: {0}")]
    Invalid(jsonwebtoken::errors::Error),
}

/// Signs a new access token for `subject`; returns it with its lifetime in seconds.
pub fn issue(
    ring: &KeyRing,
    settings: &TokenSettings,
    subject: &Subject,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let key = ring.active();
    let mut header = Header::new(key.alg);
    header.typ = Some(ACCESS_TOKEN_TYP.into());
    header.kid = Some(key.kid.clone());
    let iat = now.timestamp();
    let claims = AccessClaims {
        iss: settings.issuer.clone(),
        sub: subject.user_id,
        aud: settings.audience.clone(),
        exp: iat + settings.ttl_secs,
        iat,
        nbf: iat,
        jti: Uuid::new_v4(),
        sid: subject.session_id,
        client_id: settings.client_id.clone(),
        email: subject.email.clone(),
        email_verified: subject.email_verified,
        amr: subject.method.split(' ').map(str::to_string).collect(),
        status: subject.status.map(|slot| StatusClaim {
            status_list: StatusListReference { idx: slot.idx, uri: status_list_uri(&settings.issuer, slot.list_id) },
        }),
    };
    Ok(encode(&header, &claims, &key.encoding)?)
}

/// Verifies signature, `typ`, `iss`, `aud`, `exp` and `nbf` (against `now`,
/// the state's clock, with the leeway); returns the `kid` that signed the
/// token and its claims.
pub fn verify(
    ring: &KeyRing,
    settings: &TokenSettings,
    token: &str,
    now: i64,
) -> Result<(String, AccessClaims), AccessTokenError> {
    let header = decode_header(token).map_err(|_| AccessTokenError::Malformed)?;
    if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
        return Err(AccessTokenError::WrongType);
    }
    if header.crit.is_some() {
        return Err(AccessTokenError::Critical);
    }
    let key = header.kid.as_deref().and_then(|kid| ring.find(kid)).ok_or(AccessTokenError::UnknownKey)?;
    // The key decides the algorithm; a header claiming another one fails here.
    let mut validation = Validation::new(key.alg);
    validation.set_issuer(&[&settings.issuer]);
    validation.set_audience(&[&settings.audience]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    // Lifetime is judged below, by the clock latchkey runs on.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let claims = decode::<AccessClaims>(token, &key.decoding, &validation).map_err(AccessTokenError::Invalid)?.claims;
    if !settings.current(&claims, now) {
        return Err(AccessTokenError::Expired);
    }
    Ok((key.kid.clone(), claims))
}

impl TokenSettings {
    /// Whether `claims` are inside their lifetime at `now`, give or take the leeway.
    pub fn current(&self, claims: &AccessClaims, now: i64) -> bool {
        let leeway = self.leeway_secs as i64;
        claims.exp + leeway > now && claims.nbf - leeway <= now
    }
}
