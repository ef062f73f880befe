use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Single-use tokens sent by mail (email verification, password reset),
/// stored only as SHA-256 hashes. A newer token of the same purpose
/// supersedes the older ones.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EmailTokens::Table)
                    .col(blob(EmailTokens::Hash).primary_key())
                    .col(uuid(EmailTokens::UserId))
                    .col(string_len(EmailTokens::Purpose, 24))
                    .col(timestamp_with_time_zone(EmailTokens::CreatedAt))
                    .col(timestamp_with_time_zone(EmailTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(EmailTokens::UsedAt))
                    .col(timestamp_with_time_zone_null(EmailTokens::SupersededAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(EmailTokens::Table, EmailTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // At most one live token per account and purpose: of two workers
        // issuing at once, the second fails (and retries, superseding the
        // first) instead of leaving two valid links.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX idx_email_tokens_live ON email_tokens (user_id, purpose) \
                 WHERE used_at IS NULL AND superseded_at IS NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(EmailTokens::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum EmailTokens {
    Table,
    Hash,
    UserId,
    Purpose,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    SupersededAt,
}
