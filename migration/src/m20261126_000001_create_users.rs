use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    // As the user typed it, trimmed and with the domain lower-cased.
                    .col(string_len(Users::Email, 254))
                    // Fully lower-cased: uniqueness is case-insensitive on every backend.
                    .col(string_len_uniq(Users::EmailKey, 254))
                    .col(timestamp_with_time_zone_null(Users::EmailVerifiedAt))
                    // argon2id PHC string; NULL for accounts that only sign in with a provider.
                    .col(text_null(Users::PasswordHash))
                    .col(string_len_null(Users::Name, 100))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Users::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum Users {
    Table,
    Id,
    Email,
    EmailKey,
    EmailVerifiedAt,
    PasswordHash,
    Name,
    CreatedAt,
    UpdatedAt,
}
