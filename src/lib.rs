//! latchkey: an authentication token service.
//!
//! A request flows one way, and so do the imports (README "Layers"): `api`
//! extracts, checks the caller (`api::security` makes the `LiveUser`) and
//! calls one use case in `auth`, `oauth` or `session`; use cases reach the
//! database only through `store` and take their services from the `state`;
//! the result comes back as a domain value or error, and `api` shapes the
//! reply (`api::problems` maps every error). Nothing imports upward: the
//! values (`config`, `secret`, `clock`, `error`) import no other module.

mod api;
mod auth;
mod browser;
mod cli;
mod client;
mod clock;
mod config;
mod error;
mod fault;
mod limits;
mod mail;
mod mfa;
mod net;
mod oauth;
mod observe;
mod oidc;
mod password;
mod secret;
mod session;
mod startup;
mod state;
mod status_lists;
mod store;
mod token;

use crate::state::AppState;
/// The `latchkey` program, and what runs it or tests it from outside.
pub use crate::{
    api::spec_json,
    cli::main,
    clock::{Clock, ManualClock},
    config::Config,
    mfa::keys::MfaKeys,
    password::argon2,
    startup::{Running, start},
};
