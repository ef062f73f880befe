//! The load generator: one tokio task per client, each on its own HTTP/1.1
//! keep-alive connection, closed loop (a client sends its next request when
//! the previous answer is in). Latencies go into per-client histograms.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, client::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One simulated client: what it sends next and what it keeps from the answer.
pub trait Client: Send + 'static {
    fn request(&mut self) -> Request<Full<Bytes>>;
    /// Called with every answer; an `Err` counts as an error.
    fn response(&mut self, status: StatusCode, body: &[u8]) -> Result<(), String>;
}

/// What a group of clients achieved.
pub struct Stats {
    pub requests: u64,
    /// Sent within the window but answered (successfully) after it: not in
    /// `requests` or the rates, but proof that the scenario's requests work.
    pub late: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
}

impl Stats {
    /// Both runs as one: requests, time and latencies added up.
    pub fn merged(mut self, other: Stats) -> Stats {
        self.requests += other.requests;
        self.late += other.late;
        self.errors += other.errors;
        self.first_error = self.first_error.or(other.first_error);
        self.elapsed += other.elapsed;
        self.latency_us.add(&other.latency_us).expect("same bounds");
        self
    }

    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latency_us.max() as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

/// Runs `clients` for `duration` against `addr`.
pub async fn run(addr: SocketAddr, clients: Vec<Box<dyn Client>>, duration: Duration) -> Stats {
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = clients.into_iter().map(|client| tokio::spawn(drive(addr, client, deadline))).collect();
    let mut total =
        Stats { requests: 0, late: 0, errors: 0, first_error: None, elapsed: Duration::ZERO, latency_us: histogram() };
    for task in tasks {
        let stats = task.await.expect("client task");
        total.requests += stats.requests;
        total.late += stats.late;
        total.errors += stats.errors;
        total.first_error = total.first_error.or(stats.first_error);
        total.latency_us.add(&stats.latency_us).expect("same bounds");
    }
    // The window, not the wait for answers still in flight at its end: those
    // are not counted, so including their wait would understate the rate
    // by one latency per run (3% for a 10 s login run at 300 ms a login).
    total.elapsed = deadline - start;
    total
}

async fn connect(addr: SocketAddr) -> Result<http1::SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn drive(addr: SocketAddr, mut client: Box<dyn Client>, deadline: Instant) -> Stats {
    let mut stats =
        Stats { requests: 0, late: 0, errors: 0, first_error: None, elapsed: Duration::ZERO, latency_us: histogram() };
    let fail = |stats: &mut Stats, message: String| {
        stats.errors += 1;
        stats.first_error.get_or_insert(message);
    };
    let mut sender = None;
    while Instant::now() < deadline {
        if sender.is_none() {
            match connect(addr).await {
                Ok(s) => sender = Some(s),
                Err(e) => {
                    fail(&mut stats, e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let conn = sender.as_mut().expect("connected");
        let request = client.request();
        let sent = Instant::now();
        let outcome = async {
            conn.ready().await.map_err(|e| e.to_string())?;
            let resp = conn.send_request(request).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok::<_, String>((status, body))
        }
        .await;
        let took = sent.elapsed();
        if Instant::now() > deadline {
            // Answered after the end: not counted in the rates.
            if let Ok((status, body)) = &outcome
                && client.response(*status, body).is_ok()
            {
                stats.late += 1;
            }
            break;
        }
        match outcome {
            Ok((status, body)) => {
                stats.requests += 1;
                stats.latency_us.saturating_record(took.as_micros().max(1) as u64);
                if let Err(e) = client.response(status, &body) {
                    fail(&mut stats, e);
                }
            }
            Err(e) => {
                sender = None;
                fail(&mut stats, e);
            }
        }
    }
    stats
}

/// Builds a request with a JSON body (or none).
pub fn request(method: &str, path: &str, body: Option<String>, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path).header("host", "127.0.0.1");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = match body {
        Some(json) => {
            builder = builder.header("content-type", "application/json");
            Full::new(Bytes::from(json))
        }
        None => Full::new(Bytes::new()),
    };
    builder.body(body).expect("valid request")
}

/// One request on a fresh connection, for seeding.
pub async fn once(addr: SocketAddr, req: Request<Full<Bytes>>) -> anyhow::Result<hyper::Response<Bytes>> {
    let mut sender = connect(addr).await.map_err(anyhow::Error::msg)?;
    let (parts, body) = sender.send_request(req).await?.into_parts();
    Ok(hyper::Response::from_parts(parts, body.collect().await?.to_bytes()))
}
