//! Token Status Lists (draft-ietf-oauth-status-list-20): whether the
//! session of an access token has ended. The list a token names is fetched,
//! verified through the issuer's JWKS (the key its `kid` names, that key's
//! algorithm, `typ` `statuslist+jwt`, `sub` the URI fetched), cached for its
//! `ttl`, and read: bit `idx % 8` of byte `idx / 8`, 1 = ended.
//!
//! It fails closed: a list that cannot be fetched or verified, or an index
//! beyond it, refuses the token — except that a copy verified earlier is
//! still used while it is younger than `max_stale` (the issuer may be
//! briefly unreachable).

use std::{
    collections::HashMap,
    io::Read,
    sync::Arc,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use jsonwebtoken::{Validation, decode, decode_header};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::jwks::Jwks;

/// The `status` claim of an access token.
#[derive(Debug, Deserialize)]
pub struct StatusClaim {
    pub status_list: Reference,
}

#[derive(Debug, Deserialize)]
pub struct Reference {
    pub idx: u64,
    pub uri: String,
}

#[derive(Deserialize)]
struct ListClaims {
    sub: String,
    ttl: Option<u64>,
    status_list: List,
}

#[derive(Deserialize)]
struct List {
    bits: u8,
    lst: String,
}

struct Cached {
    bytes: Vec<u8>,
    fetched: Instant,
    ttl: Duration,
}

/// A `ttl` outside these bounds is clamped, so a list can neither make us
/// fetch it constantly nor trust it for long (draft §11.5).
const MIN_TTL: Duration = Duration::from_secs(1);
const MAX_TTL: Duration = Duration::from_secs(3600);

pub struct StatusLists {
    http: reqwest::Client,
    jwks: Arc<Jwks>,
    max_stale: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

impl StatusLists {
    pub fn new(http: reqwest::Client, jwks: Arc<Jwks>, max_stale: Duration) -> Self {
        Self { http, jwks, max_stale, cache: Mutex::default() }
    }

    /// Whether the session of a token naming `reference` has ended; an error
    /// when that cannot be known (the token must then be refused).
    pub async fn revoked(&self, reference: &Reference) -> anyhow::Result<bool> {
        let mut cache = self.cache.lock().await;
        let fresh = cache.get(&reference.uri).is_some_and(|c| c.fetched.elapsed() < c.ttl);
        if !fresh {
            match self.fetch(&reference.uri).await {
                Ok(list) => {
                    cache.insert(reference.uri.clone(), list);
                }
                Err(e) => {
                    let usable = cache.get(&reference.uri).is_some_and(|c| c.fetched.elapsed() < self.max_stale);
                    if !usable {
                        cache.remove(&reference.uri);
                        return Err(e.context("no valid status list"));
                    }
                    eprintln!("status list {} could not be renewed ({e:#}); using the copy held", reference.uri);
                }
            }
        }
        let bytes = &cache[&reference.uri].bytes;
        let byte = bytes.get((reference.idx / 8) as usize).ok_or_else(|| anyhow::anyhow!("index beyond the list"))?;
        Ok((byte >> (reference.idx % 8)) & 1 == 1)
    }

    async fn fetch(&self, uri: &str) -> anyhow::Result<Cached> {
        let response = self.http.get(uri).header("accept", "application/statuslist+jwt").send().await?;
        let token = response.error_for_status()?.text().await?;
        let header = decode_header(&token)?;
        anyhow::ensure!(header.typ.as_deref() == Some("statuslist+jwt"), "not a status list token");
        let kid = header.kid.ok_or_else(|| anyhow::anyhow!("no kid"))?;
        let key = self.jwks.key(&kid).await?.ok_or_else(|| anyhow::anyhow!("unknown kid"))?;
        let mut validation = Validation::new(key.alg);
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["sub", "iat", "exp"]);
        let claims = decode::<ListClaims>(&token, &key.key, &validation)?.claims;
        anyhow::ensure!(claims.sub == uri, "the list is not the one fetched (sub {})", claims.sub);
        anyhow::ensure!(claims.status_list.bits == 1, "{} bits per status", claims.status_list.bits);
        let mut bytes = Vec::new();
        flate2::read::ZlibDecoder::new(&B64.decode(claims.status_list.lst)?[..]).read_to_end(&mut bytes)?;
        let ttl = Duration::from_secs(claims.ttl.unwrap_or(300)).clamp(MIN_TTL, MAX_TTL);
        Ok(Cached { bytes, fetched: Instant::now(), ttl })
    }
}
