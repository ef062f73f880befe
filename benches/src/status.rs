//! Token Status Lists as a resource server sees them: how big a list is once
//! many slots are taken and some revoked (seeded with bulk SQL), and how soon
//! a logout on one instance shows in the list another instance serves.

use std::{
    io::Read,
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use hyper::StatusCode;

use crate::{
    load::{once, request},
    pg::{self, BenchDb},
};

/// A list as served: its sizes on the wire and its bits.
pub struct Served {
    pub jws_bytes: usize,
    pub compressed_bytes: usize,
    pub bits: Vec<u8>,
    pub etag: String,
}

impl Served {
    pub fn bit(&self, idx: u32) -> u8 {
        self.bits.get(idx as usize / 8).map_or(0, |b| (b >> (idx % 8)) & 1)
    }

    fn set_bits(&self) -> u64 {
        self.bits.iter().map(|b| b.count_ones() as u64).sum()
    }
}

fn payload(jwt: &str) -> anyhow::Result<serde_json::Value> {
    let part = jwt.split('.').nth(1).context("not a JWS")?;
    Ok(serde_json::from_slice(&B64.decode(part)?)?)
}

/// The path of the list an access token names, and its index there.
pub fn slot_of(access_token: &str) -> anyhow::Result<(String, u32)> {
    let claims = payload(access_token)?;
    let reference = &claims["status"]["status_list"];
    let uri = reference["uri"].as_str().context("no status claim")?;
    let at = uri.find("/v1/status-lists/").context("a status list URI")?;
    Ok((uri[at..].to_string(), reference["idx"].as_u64().context("idx")? as u32))
}

/// The path of the list the first session of `email` is given.
pub async fn list_path(addr: SocketAddr, email: &str) -> anyhow::Result<String> {
    let tokens = crate::login(addr, email).await?;
    Ok(slot_of(tokens["access_token"].as_str().context("access_token")?)?.0)
}

/// GETs a list; `None` when it answered 304 to `etag`.
async fn fetch(addr: SocketAddr, path: &str, etag: Option<&str>) -> anyhow::Result<Option<Served>> {
    let headers: Vec<(&str, &str)> = etag.map(|e| ("if-none-match", e)).into_iter().collect();
    let resp = once(addr, request("GET", path, None, &headers)).await?;
    match resp.status() {
        StatusCode::NOT_MODIFIED => return Ok(None),
        StatusCode::OK => {}
        other => bail!("{path} answered {other}"),
    }
    let etag = resp.headers().get("etag").context("no ETag")?.to_str()?.to_string();
    let jws = std::str::from_utf8(resp.body())?;
    let claims = payload(jws)?;
    let lst = claims["status_list"]["lst"].as_str().context("no lst")?;
    let compressed = B64.decode(lst)?;
    let mut bits = Vec::new();
    flate2::read::ZlibDecoder::new(&compressed[..]).read_to_end(&mut bits)?;
    Ok(Some(Served { jws_bytes: jws.len(), compressed_bytes: compressed.len(), bits, etag }))
}

/// The sizes of the lists holding `slots` taken slots, `revoked_percent` of them revoked.
pub struct Size {
    pub slots: u64,
    pub revoked_percent: u64,
    pub lists: usize,
    pub raw_bytes: usize,
    pub compressed_bytes: usize,
    pub jws_bytes: usize,
}

/// Seeds lists as latchkey fills them (random indices, each list closed at
/// half of `list_size`), fetches them from `addr`, and removes them again.
pub async fn sizes(db: &BenchDb, addr: SocketAddr, list_size: u64, cases: &[(u64, u64)]) -> anyhow::Result<Vec<Size>> {
    let mut sizes = Vec::new();
    for &(slots, revoked_percent) in cases {
        let mut ids = Vec::new();
        let mut left = slots;
        while left > 0 {
            let taken = left.min(list_size / 2);
            left -= taken;
            let id = pg::psql(&db.name, "SELECT gen_random_uuid()")?;
            let revoked = taken * revoked_percent / 100;
            // One transaction: a server must never see the list without its slots.
            pg::psql(
                &db.name,
                &format!(
                    "BEGIN; \
                     INSERT INTO status_lists (id, size, allocated, version, created_at, closed_at) \
                     VALUES ('{id}', {list_size}, {taken}, 1, now(), now()); \
                     INSERT INTO status_slots (list_id, idx, session_id, invalid) \
                     SELECT '{id}', idx, NULL, rn <= {revoked} FROM \
                     (SELECT idx, row_number() OVER (ORDER BY random()) AS rn \
                      FROM generate_series(0, {list_size} - 1) AS idx) picked \
                     WHERE rn <= {taken}; \
                     COMMIT"
                ),
            )?;
            ids.push((id, revoked));
        }
        let mut size =
            Size { slots, revoked_percent, lists: ids.len(), raw_bytes: 0, compressed_bytes: 0, jws_bytes: 0 };
        for (id, revoked) in &ids {
            let served = fetch(addr, &format!("/v1/status-lists/{id}"), None).await?.context("a list")?;
            if served.set_bits() != *revoked {
                bail!("list {id} has {} bits set, {revoked} were seeded", served.set_bits());
            }
            size.raw_bytes += served.bits.len();
            size.compressed_bytes += served.compressed_bytes;
            size.jws_bytes += served.jws_bytes;
        }
        let quoted: Vec<String> = ids.iter().map(|(id, _)| format!("'{id}'")).collect();
        pg::psql(&db.name, &format!("DELETE FROM status_lists WHERE id IN ({})", quoted.join(",")))?;
        sizes.push(size);
    }
    Ok(sizes)
}

pub fn print_sizes(sizes: &[Size]) {
    println!("\nstatus list sizes (slots taken as latchkey takes them, at random; each list closed at half full):");
    println!("\n| slots taken | revoked | lists | bits (raw) | lst (ZLIB) | whole JWS |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for s in sizes {
        println!(
            "| {} | {}% | {} | {} KiB | {:.1} KiB | {:.1} KiB |",
            s.slots,
            s.revoked_percent,
            s.lists,
            s.raw_bytes / 1024,
            s.compressed_bytes as f64 / 1024.0,
            s.jws_bytes as f64 / 1024.0
        );
    }
}

/// For `rounds` sessions: log in and out on `a`, and time from the logout
/// request until `b` serves the session's bit set (polled every 5 ms with
/// `If-None-Match`). Instances look for changed lists once a second; each
/// logout waits a different part of a second first, so the rounds do not
/// all land at one point of that cycle.
pub async fn propagation(a: SocketAddr, b: SocketAddr, email: &str, rounds: usize) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::new();
    for round in 0..rounds {
        let phase = (round as f64 * 0.618_034).fract();
        tokio::time::sleep(Duration::from_secs_f64(phase)).await;
        let tokens = crate::login(a, email).await?;
        let access = tokens["access_token"].as_str().context("access_token")?;
        let (path, idx) = slot_of(access)?;
        let served = fetch(b, &path, None).await?.context("a list")?;
        if served.bit(idx) != 0 {
            bail!("a fresh session's bit is set");
        }
        let mut etag = served.etag;
        let started = Instant::now();
        let bearer = format!("Bearer {access}");
        let resp = once(a, request("POST", "/v1/auth/logout", None, &[("authorization", &bearer)])).await?;
        if resp.status() != StatusCode::NO_CONTENT {
            bail!("logout answered {}", resp.status());
        }
        loop {
            if let Some(served) = fetch(b, &path, Some(&etag)).await? {
                if served.bit(idx) == 1 {
                    break;
                }
                etag = served.etag;
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the bit did not reach the other instance in 30 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        samples.push(started.elapsed());
    }
    Ok(samples)
}

pub fn print_propagation(samples: &[Duration]) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "\nlogout on instance A → its bit in the list instance B serves, {} sessions, one at a time:\n  \
         median {:.0} ms   p90 {:.0} ms   max {:.0} ms",
        sorted.len(),
        at(0.5),
        at(0.9),
        at(1.0)
    );
}
