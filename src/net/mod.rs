//! The HTTP server: accepting connections and serving the API on them, with
//! the limits a public listener needs (README "Abuse resistance"):
//!
//! * a **head deadline**: a connection must deliver a whole request head
//!   within `header_timeout` of opening, or of its last answer — a total
//!   deadline, so a client trickling a byte every few seconds is dropped as
//!   surely as a silent one (and an idle keep-alive connection is closed);
//! * an **idle timeout** for whatever comes after the head (`idle::IdleIo`);
//! * **connection caps**, in all and per peer address; at the total, the
//!   connection that has waited longest for a request head gives way (`caps`).
//!
//! poem's own server offers none of the first and third, and its idle
//! timeout waits for a half-read request forever; this loop drives poem's
//! endpoint through hyper directly, the way poem's server does.

mod caps;
mod idle;

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use ipnet::IpNet;
use poem::{
    Addr, Endpoint,
    http::uri::Scheme,
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    net::TcpListener,
    sync::watch,
    time::{Instant, sleep, sleep_until},
};

pub use self::caps::fit_to_file_limit;
use self::{
    caps::{Activity, ConnectionCaps, InFlight, Refused},
    idle::IdleIo,
};

/// How the listener treats connections.
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Peers exempt from the per-address cap (they carry many clients).
    pub trusted_proxies: Vec<IpNet>,
    /// How long in-flight requests may take to finish after shutdown begins.
    pub drain: Duration,
}

/// The HTTP/2 header-list cap (HPACK-decoded size).
const MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// Serves `ep` on `listener` until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish (at most `limits.drain`) and
/// returns.
pub async fn serve<E>(
    listener: TcpListener,
    ep: E,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    E: Endpoint + 'static,
{
    let ep = Arc::new(ep);
    let local = listener.local_addr()?;
    let caps =
        ConnectionCaps::new(limits.max_connections, limits.max_connections_per_ip, limits.trusted_proxies.clone());
    let (stop, stopping) = watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let drained = Arc::new(tokio::sync::Notify::new());
    let refusals = RefusalLog::default();
    tokio::pin!(shutdown);
    loop {
        // Not accepting while connections that gave way are still closing.
        tokio::select! {
            () = &mut shutdown => break,
            () = caps.wait_for_room() => {}
        }
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = match caps.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refused) => {
                refusals.note(refused, &limits);
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        open.fetch_add(1, Ordering::AcqRel);
        let (ep, limits, stopping, open, drained) =
            (ep.clone(), limits.clone(), stopping.clone(), open.clone(), drained.clone());
        tokio::spawn(async move {
            serve_connection(stream, local, peer, ep, &limits, &slot.activity, stopping).await;
            drop(slot);
            if open.fetch_sub(1, Ordering::AcqRel) == 1 {
                drained.notify_one();
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let waiting = open.load(Ordering::Acquire);
    if waiting > 0 {
        tracing::info!(connections = waiting, "draining in-flight requests");
        let all_closed = async {
            while open.load(Ordering::Acquire) > 0 {
                drained.notified().await;
            }
        };
        if tokio::time::timeout(limits.drain, all_closed).await.is_err() {
            tracing::warn!(connections = open.load(Ordering::Acquire), "drain timed out; closing what is left");
        }
    }
    Ok(())
}

async fn serve_connection<E: Endpoint + 'static>(
    stream: tokio::net::TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    ep: Arc<E>,
    limits: &Limits,
    activity: &Arc<Activity>,
    mut stopping: watch::Receiver<bool>,
) {
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let in_flight = activity.begin();
            let ep = ep.clone();
            async move {
                let req = poem::Request::from((
                    req,
                    LocalAddr(Addr::SocketAddr(local)),
                    RemoteAddr(Addr::SocketAddr(peer)),
                    Scheme::HTTP,
                ));
                let resp = hyper::Response::<Body>::from(ep.get_response(req).await);
                // In flight until the last byte of the answer is handed over.
                Ok::<_, Infallible>(resp.map(|body| Tracked { body, _in_flight: in_flight }))
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http2().max_header_list_size(MAX_HEADER_LIST_BYTES);
    let io = TokioIo::new(IdleIo::new(stream, limits.idle_timeout));
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let mut shutting_down = *stopping.borrow();
    if shutting_down {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        // Re-checked at least every `header_timeout` while a request is in flight.
        let deadline = activity.waiting_since().map(|since| since + limits.header_timeout);
        let wake = deadline.unwrap_or_else(|| Instant::now() + limits.header_timeout);
        tokio::select! {
            _ = conn.as_mut() => return,
            () = activity.evicted() => {
                tracing::debug!(%peer, "connection gave its place to a newer one while waiting for a request head");
                return;
            }
            changed = stopping.changed(), if !shutting_down => {
                if changed.is_err() || *stopping.borrow() {
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = sleep_until(wake) => {
                if activity.waiting_since().is_some_and(|since| since + limits.header_timeout <= Instant::now()) {
                    // No whole request head in time: dropped, not asked to
                    // close (a graceful close would wait for the head).
                    tracing::debug!(%peer, "no request head within the deadline; connection closed");
                    return;
                }
            }
        }
    }
}

/// What hyper writes: poem's response body.
type Body = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;

/// A response body that keeps its request in flight until hyper is done
/// with it (and drops it), so a long answer to a slow reader is not taken
/// for a missing request head.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Logs refused connections at most once a second, with how many there were.
#[derive(Default)]
struct RefusalLog {
    last: Mutex<Option<(Instant, u64)>>,
}

impl RefusalLog {
    fn note(&self, refused: Refused, limits: &Limits) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match &mut *last {
            Some((at, count)) if now.duration_since(*at) < Duration::from_secs(1) => *count += 1,
            _ => {
                let earlier = last.map_or(0, |(_, count)| count);
                let (cap, value) = match refused {
                    Refused::Total => ("LATCHKEY_MAX_CONNECTIONS", limits.max_connections),
                    Refused::PerPeer => ("LATCHKEY_MAX_CONNECTIONS_PER_IP", limits.max_connections_per_ip),
                };
                tracing::warn!(cap, value, refused_before = earlier, "connection refused: over {cap} ({value})");
                *last = Some((now, 0));
            }
        }
    }
}
