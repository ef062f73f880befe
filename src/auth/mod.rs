//! Accounts: input rules, password hashing, and the use cases of signing
//! up, verifying the address, logging in and managing the password.

pub mod account;
pub mod credentials;
pub mod factors;
pub mod flow;
pub mod login;
pub mod passkeys;
pub mod profile;
pub mod recovery;
pub mod signup;
pub mod validate;
pub mod verification;
