//! Black-box tests: each starts the real `latchkey` binary on its own database.

mod helpers;
mod oidc;
mod smtp;
mod tools;

mod abuse;
mod account;
mod attacks;
mod bad_input;
mod browser;
mod browser_mode;
mod cli;
mod discovery;
mod faults;
mod google;
mod health;
mod integrations;
mod mail;
mod mfa;
mod openapi;
mod operations;
mod passkeys;
mod pg;
mod poolers;
mod reliability;
mod revocation;
mod rotation;
mod signup_login;
mod tokens;
