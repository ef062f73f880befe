use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000002_create_sessions::Sessions;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Refresh tokens are stored only as SHA-256 hashes; the hash is the key.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(blob(RefreshTokens::Hash).primary_key())
                    .col(uuid(RefreshTokens::SessionId))
                    .col(timestamp_with_time_zone(RefreshTokens::IssuedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    // Set once, by the rotation that retired this token.
                    .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                    .col(blob_null(RefreshTokens::SuccessorHash))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_session_id")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::SessionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(RefreshTokens::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum RefreshTokens {
    Table,
    Hash,
    SessionId,
    IssuedAt,
    ExpiresAt,
    UsedAt,
    SuccessorHash,
}
