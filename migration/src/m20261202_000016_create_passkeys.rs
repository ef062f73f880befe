use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Passkeys (README "Passkeys"): each registered credential as webauthn-rs
/// serialises it, and the ceremonies under way (their state, single use),
/// so any instance can finish what another started.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Passkeys::Table)
                    .col(uuid(Passkeys::Id).primary_key())
                    .col(uuid(Passkeys::UserId))
                    .col(blob(Passkeys::CredentialId).unique_key())
                    // The credential (public key, counter, flags) as webauthn-rs stores it: JSON.
                    .col(text(Passkeys::Credential))
                    // The signature counter last seen; it must only go up.
                    .col(big_integer(Passkeys::SignCount).default(0))
                    .col(string(Passkeys::Name))
                    .col(timestamp_with_time_zone(Passkeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(Passkeys::LastUsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Passkeys::Table, Passkeys::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("passkeys_user_id").table(Passkeys::Table).col(Passkeys::UserId).to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebauthnChallenges::Table)
                    .col(uuid(WebauthnChallenges::Id).primary_key())
                    // `register` (of a signed-in user) or `sign_in` (of nobody yet).
                    .col(string(WebauthnChallenges::Purpose))
                    .col(uuid_null(WebauthnChallenges::UserId))
                    // The ceremony's state as webauthn-rs serialises it (the challenge within).
                    .col(text(WebauthnChallenges::State))
                    .col(timestamp_with_time_zone(WebauthnChallenges::CreatedAt))
                    .col(timestamp_with_time_zone(WebauthnChallenges::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebauthnChallenges::Table, WebauthnChallenges::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webauthn_challenges_expires_at")
                    .table(WebauthnChallenges::Table)
                    .col(WebauthnChallenges::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(WebauthnChallenges::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Passkeys::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Passkeys {
    Table,
    Id,
    UserId,
    CredentialId,
    Credential,
    SignCount,
    Name,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum WebauthnChallenges {
    Table,
    Id,
    Purpose,
    UserId,
    State,
    CreatedAt,
    ExpiresAt,
}
