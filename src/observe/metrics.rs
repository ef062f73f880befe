//! latchkey's metrics, by name, through the `metrics` facade and its
//! Prometheus exporter. Every name and label set is written here once; the
//! rest of the code calls these functions. No label ever holds a user id, an
//! address or a token: labels take values from small fixed sets.

use std::{cell::RefCell, collections::HashMap, sync::OnceLock};

use metrics::{Counter, Histogram, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const HTTP_REQUESTS: &str = "latchkey_http_requests_total";
const HTTP_DURATION: &str = "latchkey_http_request_duration_seconds";
const LOGINS: &str = "latchkey_logins_total";
const REFRESHES: &str = "latchkey_refreshes_total";
const SESSIONS_REVOKED: &str = "latchkey_sessions_revoked_total";
const RATE_LIMITED: &str = "latchkey_rate_limited_total";
const MAIL_QUEUE_DEPTH: &str = "latchkey_mail_queue_depth";
const MAIL_SENT: &str = "latchkey_mail_sent_total";
const DB_POOL: &str = "latchkey_db_pool_connections";
const KEY_RING_RELOADS: &str = "latchkey_key_ring_reloads_total";
const BUILD_INFO: &str = "latchkey_build_info";

/// Request durations, in seconds: from a cached JWKS (sub-millisecond) to a
/// queued login (a second and more).
const DURATION_BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed by the first call. Servers started in
/// one process (the in-process tests) share it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &DURATION_BUCKETS)
                .expect("fixed, non-empty buckets")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will stay empty");
            }
            describe();
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// The exposition text: histograms brought up to date first.
pub fn render(handle: &PrometheusHandle) -> String {
    handle.run_upkeep();
    handle.render()
}

fn describe() {
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by OpenAPI route template, method and status.");
    describe_histogram!(HTTP_DURATION, metrics::Unit::Seconds, "Time to answer an HTTP request.");
    describe_counter!(LOGINS, "Sign-ins by method (password, google, mfa, passkey) and result.");
    describe_counter!(REFRESHES, "Refresh-token exchanges by result: ok, retried, invalid, reused.");
    describe_counter!(SESSIONS_REVOKED, "Sessions ended, by reason.");
    describe_counter!(RATE_LIMITED, "Requests refused by a rate limit, by rule.");
    describe_gauge!(MAIL_QUEUE_DEPTH, "Mails waiting in the outbox.");
    describe_counter!(MAIL_SENT, "Mail delivery attempts by result: sent, retry, failed.");
    describe_gauge!(DB_POOL, "Database pool connections by state: idle, in_use.");
    describe_counter!(KEY_RING_RELOADS, "Times the key ring was loaded again from its directory.");
    describe_gauge!(BUILD_INFO, "Always 1; the version is the label.");
}

/// A route, a method (by the address of their `'static` names) and a status.
type SeriesKey = (usize, usize, u16);

/// One answered request. `route` is an OpenAPI path template (or one of a
/// few fixed names), never the path as sent.
pub fn http_request(route: &'static str, method: &'static str, status: u16, seconds: f64) {
    // The handles of each series, kept per thread: a request costs two
    // atomic updates, not two registry lookups.
    thread_local! {
        static SERIES: RefCell<HashMap<SeriesKey, (Counter, Histogram)>> = RefCell::default();
    }
    SERIES.with_borrow_mut(|series| {
        let (count, time) =
            series.entry((route.as_ptr() as usize, method.as_ptr() as usize, status)).or_insert_with(|| {
                (
                    counter!(HTTP_REQUESTS, "route" => route, "method" => method, "status" => status.to_string()),
                    histogram!(HTTP_DURATION, "route" => route, "method" => method),
                )
            });
        count.increment(1);
        time.record(seconds);
    });
}

/// A sign-in: `method` is `password`, `google`, `mfa` (the second step) or `passkey`; `result` a fixed word.
pub fn login(method: &'static str, result: &'static str) {
    counter!(LOGINS, "method" => method, "result" => result).increment(1);
}

/// A refresh-token exchange: `ok`, `retried`, `invalid` or `reused`.
pub fn refresh(result: &'static str) {
    counter!(REFRESHES, "result" => result).increment(1);
}

/// Sessions ended for `reason` (the security event's kind).
pub fn sessions_revoked(reason: &'static str, count: u64) {
    if count > 0 {
        counter!(SESSIONS_REVOKED, "reason" => reason).increment(count);
    }
}

/// A request refused by the limit named `rule`.
pub fn rate_limited(rule: &'static str) {
    counter!(RATE_LIMITED, "rule" => rule).increment(1);
}

pub fn mail_queue_depth(depth: u64) {
    gauge!(MAIL_QUEUE_DEPTH).set(depth as f64);
}

/// A delivery attempt: `sent`, `retry` (will be tried again) or `failed` (given up).
pub fn mail_sent(result: &'static str) {
    counter!(MAIL_SENT, "result" => result).increment(1);
}

pub fn db_pool(idle: u64, in_use: u64) {
    gauge!(DB_POOL, "state" => "idle").set(idle as f64);
    gauge!(DB_POOL, "state" => "in_use").set(in_use as f64);
}

pub fn key_ring_reloaded() {
    counter!(KEY_RING_RELOADS).increment(1);
}
