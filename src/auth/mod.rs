//! Accounts: input rules, password hashing, and the signup and login use cases.

pub mod account;
pub mod login;
pub mod password;
pub mod signup;
pub mod validate;

pub use password::PasswordHasher;
