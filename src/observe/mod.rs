//! What an operator sees (README "Operations"): Prometheus metrics and the
//! request id that ties a request's log lines and its answer together.

pub mod metrics;
pub mod request_id;
