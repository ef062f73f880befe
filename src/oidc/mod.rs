//! Talking to an OpenID provider (Google by default), and where a sign-in
//! may send the browser back to. Both are built at start-up from the
//! configuration and held by the state; the sign-in use cases are `oauth`.

mod provider;
pub mod redirect;

pub use provider::{AuthorizationRequest, Identity, OidcProvider, ProviderError};
