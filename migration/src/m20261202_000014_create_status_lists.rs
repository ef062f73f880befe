use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000002_create_sessions::Sessions;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Token Status Lists (README "Revocation"): each session owns one slot of
/// one list, named in every access token of the session; the slot's bit is
/// set when the session ends. Slots live on after their session (an account
/// deletion removes the sessions, not the bits), until their list retires.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StatusLists::Table)
                    .col(uuid(StatusLists::Id).primary_key())
                    // Slots in the list (bits): it is served at this size from the start.
                    .col(integer(StatusLists::Size))
                    .col(integer(StatusLists::Allocated).default(0))
                    // Bumped whenever a bit is set, so instances know to rebuild it.
                    .col(big_integer(StatusLists::Version).default(0))
                    .col(timestamp_with_time_zone(StatusLists::CreatedAt))
                    // No new slots once closed; retired (deleted) when every token naming it has expired.
                    .col(timestamp_with_time_zone_null(StatusLists::ClosedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StatusSlots::Table)
                    .col(uuid(StatusSlots::ListId))
                    .col(integer(StatusSlots::Idx))
                    // Not a foreign key: the bit must outlive the session.
                    .col(uuid_null(StatusSlots::SessionId))
                    .col(boolean(StatusSlots::Invalid).default(false))
                    .primary_key(Index::create().col(StatusSlots::ListId).col(StatusSlots::Idx))
                    .foreign_key(
                        ForeignKey::create()
                            .from(StatusSlots::Table, StatusSlots::ListId)
                            .to(StatusLists::Table, StatusLists::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("status_slots_session_id")
                    .table(StatusSlots::Table)
                    .col(StatusSlots::SessionId)
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite alters one thing at a time.
        manager
            .alter_table(
                Table::alter().table(Sessions::Table).add_column(uuid_null(SessionStatus::StatusListId)).to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(Sessions::Table).add_column(integer_null(SessionStatus::StatusIdx)).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [SessionStatus::StatusIdx, SessionStatus::StatusListId] {
            manager.alter_table(Table::alter().table(Sessions::Table).drop_column(column).to_owned()).await?;
        }
        manager.drop_table(Table::drop().table(StatusSlots::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(StatusLists::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum StatusLists {
    Table,
    Id,
    Size,
    Allocated,
    Version,
    CreatedAt,
    ClosedAt,
}

#[derive(DeriveIden)]
enum StatusSlots {
    Table,
    ListId,
    Idx,
    SessionId,
    Invalid,
}

#[derive(DeriveIden)]
enum SessionStatus {
    StatusListId,
    StatusIdx,
}
