use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000002_create_sessions::Sessions;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Rate-limit counters, shared by every instance: a fixed window per key
/// (`rate_limits`, keyed by rule and a hash of the subject) and per session
/// for refreshes (`refresh_budgets`, gone with the session).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RateLimits::Table)
                    .col(string_len(RateLimits::Key, 100).primary_key())
                    .col(timestamp_with_time_zone(RateLimits::WindowStart))
                    .col(integer(RateLimits::Count))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshBudgets::Table)
                    .col(uuid(RefreshBudgets::SessionId).primary_key())
                    .col(timestamp_with_time_zone(RefreshBudgets::WindowStart))
                    .col(integer(RefreshBudgets::Count))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshBudgets::Table, RefreshBudgets::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(RefreshBudgets::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(RateLimits::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum RateLimits {
    Table,
    Key,
    WindowStart,
    Count,
}

#[derive(DeriveIden)]
enum RefreshBudgets {
    Table,
    SessionId,
    WindowStart,
    Count,
}
