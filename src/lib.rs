//! latchkey: an authentication token service.
//!
//! A request flows one way: `api/` extracts and validates, calls one use-case
//! function in `auth/` or `session/`, which reaches the database only through
//! `store/`; the result comes back as a domain value and `api/` shapes the reply.

pub mod api;
pub mod auth;
pub mod browser;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod error;
pub mod fault;
pub mod limits;
pub mod mail;
pub mod net;
pub mod oauth;
pub mod oidc;
pub mod password;
pub mod secret;
pub mod session;
pub mod startup;
pub mod state;
pub mod store;
pub mod token;

pub use config::Config;
pub use state::AppState;
