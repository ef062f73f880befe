//! Where a request came from: recorded on sessions and security events, and
//! counted by the per-IP rate limits. The API layer fills it in
//! (`api::client_info`, through trusted proxies only).

use crate::store::events;

/// Where a request came from, recorded on sessions and events.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    /// The client IP as rate limits count it (`unknown` when the peer has none).
    pub fn ip_or_unknown(&self) -> &str {
        self.ip.as_deref().unwrap_or("unknown")
    }

    /// As recorded on security events.
    pub fn origin(&self) -> events::Origin<'_> {
        events::Origin { ip: self.ip.as_deref(), user_agent: self.user_agent.as_deref() }
    }
}
