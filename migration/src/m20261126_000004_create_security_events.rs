use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The audit trail: logins, failures, revocations, refresh-token reuse.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SecurityEvents::Table)
                    .col(pk_uuid(SecurityEvents::Id))
                    .col(uuid(SecurityEvents::UserId))
                    .col(uuid_null(SecurityEvents::SessionId))
                    .col(string_len(SecurityEvents::Kind, 48))
                    .col(string_len_null(SecurityEvents::Ip, 64))
                    .col(timestamp_with_time_zone(SecurityEvents::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SecurityEvents::Table, SecurityEvents::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_security_events_user_id")
                    .table(SecurityEvents::Table)
                    .col(SecurityEvents::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SecurityEvents::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SecurityEvents {
    Table,
    Id,
    UserId,
    SessionId,
    Kind,
    Ip,
    CreatedAt,
}
