//! A JWKS cache for one issuer. It keeps the keys as long as the issuer's
//! `Cache-Control: max-age` allows, revalidates with `If-None-Match`, and
//! refetches at once when a token names a key it does not know (a rotation)
//! — but at most once per `cooldown`, so a flood of tokens with made-up
//! `kid`s cannot turn into a flood of requests to the issuer.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{Jwk, JwkSet},
};
use tokio::sync::Mutex;

/// A published key: the decoding key and the one algorithm it may verify.
#[derive(Clone)]
pub struct Key {
    pub alg: Algorithm,
    pub key: DecodingKey,
}

pub struct Jwks {
    uri: String,
    http: reqwest::Client,
    cooldown: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Key>,
    etag: Option<String>,
    fresh_until: Option<Instant>,
    fetched_at: Option<Instant>,
}

/// Used when the issuer sends no `max-age`.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

impl Jwks {
    pub fn new(uri: String, http: reqwest::Client, cooldown: Duration) -> Self {
        Self { uri, http, cooldown, state: Mutex::new(State::default()) }
    }

    /// The key named `kid`, fetching or revalidating the set when needed.
    pub async fn key(&self, kid: &str) -> anyhow::Result<Option<Key>> {
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let stale = state.fresh_until.is_none_or(|until| now >= until);
        let unknown = !state.keys.contains_key(kid);
        let may_refetch = state.fetched_at.is_none_or(|at| now.duration_since(at) >= self.cooldown);
        if stale || (unknown && may_refetch) {
            self.fetch(&mut state).await?;
        }
        Ok(state.keys.get(kid).cloned())
    }

    async fn fetch(&self, state: &mut State) -> anyhow::Result<()> {
        let mut request = self.http.get(&self.uri);
        if let Some(etag) = &state.etag {
            request = request.header(reqwest::header::IF_NONE_MATCH, etag);
        }
        let response = request.send().await?;
        let now = Instant::now();
        state.fetched_at = Some(now);
        let max_age = max_age(response.headers()).unwrap_or(DEFAULT_MAX_AGE);
        state.fresh_until = Some(now + max_age);
        if response.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(());
        }
        let response = response.error_for_status()?;
        state.etag = response.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(Into::into);
        let set: JwkSet = response.json().await?;
        state.keys = set.keys.iter().filter_map(|jwk| Some((jwk.common.key_id.clone()?, decoding_key(jwk)?))).collect();
        Ok(())
    }
}

/// The key and its algorithm; keys without an `alg` are not used, so the
/// algorithm always comes from the issuer, never from a token's header.
fn decoding_key(jwk: &Jwk) -> Option<Key> {
    let alg = jwk.common.key_algorithm?.to_string().parse::<Algorithm>().ok()?;
    Some(Key { alg, key: DecodingKey::from_jwk(jwk).ok()? })
}

fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    value.split(',').find_map(|d| d.trim().strip_prefix("max-age=")?.parse().ok()).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    };

    use poem::{
        EndpointExt, Response, Route, Server, get, handler, http::StatusCode, listener::TcpListener, web::Data,
    };

    use super::*;

    /// What the test issuer saw: the number of JWKS requests and their `If-None-Match`.
    #[derive(Default)]
    struct Seen {
        requests: AtomicUsize,
        if_none_match: Mutex<Vec<Option<String>>>,
    }

    #[handler]
    fn serve_jwks(req: &poem::Request, seen: Data<&Arc<Seen>>, max_age: Data<&u64>) -> Response {
        seen.requests.fetch_add(1, Ordering::SeqCst);
        let etag = req.headers().get("if-none-match").and_then(|v| v.to_str().ok()).map(String::from);
        let matches = etag.as_deref() == Some("\"v1\"");
        seen.if_none_match.lock().unwrap().push(etag);
        let builder = Response::builder()
            .header("etag", "\"v1\"")
            .header("cache-control", format!("public, max-age={}", *max_age));
        if matches { builder.status(StatusCode::NOT_MODIFIED).finish() } else { builder.body(r#"{"keys":[]}"#) }
    }

    async fn issuer(max_age: u64) -> (String, Arc<Seen>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let seen = Arc::new(Seen::default());
        let app = Route::new().at("/jwks", get(serve_jwks)).data(seen.clone()).data(max_age);
        tokio::spawn(Server::new(TcpListener::bind(addr)).run(app));
        let url = format!("http://{addr}/jwks");
        for _ in 0..100 {
            if reqwest::get(&url).await.is_ok() {
                seen.requests.store(0, Ordering::SeqCst);
                seen.if_none_match.lock().unwrap().clear();
                return (url, seen);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("test issuer did not start");
    }

    #[tokio::test]
    async fn a_flood_of_unknown_kids_costs_one_fetch_per_cooldown() {
        let (url, seen) = issuer(300).await;
        let jwks = Jwks::new(url, reqwest::Client::new(), Duration::from_millis(300));
        for i in 0..50 {
            assert!(jwks.key(&format!("bogus-{i}")).await.unwrap().is_none());
        }
        assert_eq!(
            seen.requests.load(Ordering::SeqCst),
            1,
            "the first lookup fetched; the rest waited out the cooldown"
        );
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(jwks.key("bogus-again").await.unwrap().is_none());
        assert_eq!(seen.requests.load(Ordering::SeqCst), 2, "after the cooldown an unknown kid refetches once");
    }

    #[tokio::test]
    async fn a_stale_set_is_revalidated_with_its_etag() {
        let (url, seen) = issuer(0).await;
        let jwks = Jwks::new(url, reqwest::Client::new(), Duration::from_secs(60));
        jwks.key("a").await.unwrap();
        jwks.key("a").await.unwrap();
        let sent = seen.if_none_match.lock().unwrap().clone();
        assert_eq!(sent, [None, Some("\"v1\"".to_string())], "max-age=0: the second lookup revalidates");
    }
}
