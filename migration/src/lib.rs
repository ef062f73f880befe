//! Schema migrations for latchkey. The same code runs on Postgres and SQLite;
//! `latchkey migrate` (and every `latchkey serve`) applies them.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_users;
mod m20261126_000002_create_sessions;
mod m20261126_000003_create_refresh_tokens;
mod m20261126_000004_create_security_events;
mod m20261126_000005_create_email_tokens;
mod m20261126_000006_create_mail_outbox;
mod m20261126_000007_rebuild_security_events;
mod m20261126_000008_create_profiles;
mod m20261126_000009_create_rate_limits;
mod m20261126_000010_create_oauth;
mod m20261126_000011_add_oauth_app_pkce;
mod m20261201_000012_create_signup_attempts;
mod m20261201_000013_derive_oauth_secrets;
mod m20261202_000014_create_status_lists;
mod m20261202_000015_create_mfa;
mod m20261202_000016_create_passkeys;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_users::Migration),
            Box::new(m20261126_000002_create_sessions::Migration),
            Box::new(m20261126_000003_create_refresh_tokens::Migration),
            Box::new(m20261126_000004_create_security_events::Migration),
            Box::new(m20261126_000005_create_email_tokens::Migration),
            Box::new(m20261126_000006_create_mail_outbox::Migration),
            Box::new(m20261126_000007_rebuild_security_events::Migration),
            Box::new(m20261126_000008_create_profiles::Migration),
            Box::new(m20261126_000009_create_rate_limits::Migration),
            Box::new(m20261126_000010_create_oauth::Migration),
            Box::new(m20261126_000011_add_oauth_app_pkce::Migration),
            Box::new(m20261201_000012_create_signup_attempts::Migration),
            Box::new(m20261201_000013_derive_oauth_secrets::Migration),
            Box::new(m20261202_000014_create_status_lists::Migration),
            Box::new(m20261202_000015_create_mfa::Migration),
            Box::new(m20261202_000016_create_passkeys::Migration),
        ]
    }
}
