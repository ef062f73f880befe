//! sea-orm entities of latchkey. They stay behind `latchkey::store`: the HTTP
//! layer never sees them.

pub mod email_token;
pub mod identity;
pub mod mail_outbox;
pub mod mfa_challenge;
pub mod mfa_totp;
pub mod oauth_login_code;
pub mod oauth_state;
pub mod passkey;
pub mod profile;
pub mod rate_limit;
pub mod recovery_code;
pub mod refresh_budget;
pub mod refresh_token;
pub mod security_event;
pub mod session;
pub mod signup_attempt;
pub mod status_list;
pub mod status_slot;
pub mod user;
pub mod webauthn_challenge;
