use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Passwords tried at sign-ups of addresses that already had an account,
/// hashed with the account's salt (gone with the account).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SignupAttempts::Table)
                    .col(uuid(SignupAttempts::Id).primary_key())
                    .col(uuid(SignupAttempts::UserId))
                    .col(text(SignupAttempts::PasswordHash))
                    .col(timestamp_with_time_zone(SignupAttempts::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SignupAttempts::Table, SignupAttempts::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("signup_attempts_user_id")
                    .table(SignupAttempts::Table)
                    .col(SignupAttempts::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SignupAttempts::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SignupAttempts {
    Table,
    Id,
    UserId,
    PasswordHash,
    CreatedAt,
}
