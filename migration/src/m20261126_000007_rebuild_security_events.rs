use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Security events gain the client's user agent, and outlive the account:
/// deleting an account removes its events but leaves one `account_deleted`
/// record, so `user_id` can no longer be a foreign key. SQLite cannot drop a
/// foreign key in place, so the table is rebuilt (the same steps on Postgres).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(NewEvents::Table)
                    .col(pk_uuid(SecurityEvents::Id))
                    .col(uuid(SecurityEvents::UserId))
                    .col(uuid_null(SecurityEvents::SessionId))
                    .col(string_len(SecurityEvents::Kind, 48))
                    .col(string_len_null(SecurityEvents::Ip, 64))
                    .col(string_len_null(SecurityEvents::UserAgent, 512))
                    .col(timestamp_with_time_zone(SecurityEvents::CreatedAt))
                    .to_owned(),
            )
            .await?;
        let columns = [
            SecurityEvents::Id,
            SecurityEvents::UserId,
            SecurityEvents::SessionId,
            SecurityEvents::Kind,
            SecurityEvents::Ip,
            SecurityEvents::CreatedAt,
        ];
        let copy = Query::insert()
            .into_table(NewEvents::Table)
            .columns(columns)
            .select_from(Query::select().columns(columns).from(SecurityEvents::Table).to_owned())
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .to_owned();
        manager.exec_stmt(copy).await?;
        manager.drop_table(Table::drop().table(SecurityEvents::Table).to_owned()).await?;
        manager.rename_table(Table::rename().table(NewEvents::Table, SecurityEvents::Table).to_owned()).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_security_events_user_id")
                    .table(SecurityEvents::Table)
                    .col(SecurityEvents::UserId)
                    .col(SecurityEvents::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration("security_events cannot be narrowed back; restore from a backup".into()))
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum SecurityEvents {
    Table,
    Id,
    UserId,
    SessionId,
    Kind,
    Ip,
    UserAgent,
    CreatedAt,
}

#[derive(DeriveIden)]
enum NewEvents {
    #[sea_orm(iden = "security_events_new")]
    Table,
}
