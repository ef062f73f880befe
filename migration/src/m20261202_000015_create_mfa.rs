use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Second factors (README "Second factors"): an account's TOTP secret
/// (encrypted), its recovery codes (hashed), and the challenges that stand
/// between a correct password and a session (hashed, single use).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MfaTotp::Table)
                    .col(uuid(MfaTotp::UserId).primary_key())
                    // AES-256-GCM under the key in the key ring directory: nonce, then ciphertext.
                    .col(blob(MfaTotp::SecretSealed))
                    .col(timestamp_with_time_zone(MfaTotp::CreatedAt))
                    // Null until a first code proves the authenticator has the secret.
                    .col(timestamp_with_time_zone_null(MfaTotp::ConfirmedAt))
                    // The last time step accepted: a code is good once.
                    .col(big_integer_null(MfaTotp::LastStep))
                    .foreign_key(
                        ForeignKey::create()
                            .from(MfaTotp::Table, MfaTotp::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    // HMAC-SHA-256 of the normalised code under a server key.
                    .col(blob(RecoveryCodes::Hash).primary_key())
                    .col(uuid(RecoveryCodes::UserId))
                    .col(timestamp_with_time_zone(RecoveryCodes::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RecoveryCodes::Table, RecoveryCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("recovery_codes_user_id")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MfaChallenges::Table)
                    // SHA-256 of the `lk_mfa_` token.
                    .col(blob(MfaChallenges::Hash).primary_key())
                    .col(uuid(MfaChallenges::UserId))
                    // The first factor's `amr` value (`pwd`, or the provider's).
                    .col(string(MfaChallenges::Method))
                    // Codes tried; counted before each check.
                    .col(integer(MfaChallenges::Attempts).default(0))
                    .col(timestamp_with_time_zone(MfaChallenges::CreatedAt))
                    .col(timestamp_with_time_zone(MfaChallenges::ExpiresAt))
                    .col(timestamp_with_time_zone_null(MfaChallenges::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(MfaChallenges::Table, MfaChallenges::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("mfa_challenges_expires_at")
                    .table(MfaChallenges::Table)
                    .col(MfaChallenges::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(MfaChallenges::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(RecoveryCodes::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(MfaTotp::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum MfaTotp {
    Table,
    UserId,
    SecretSealed,
    CreatedAt,
    ConfirmedAt,
    LastStep,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    Hash,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MfaChallenges {
    Table,
    Hash,
    UserId,
    Method,
    Attempts,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}
