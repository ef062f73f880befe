use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The onboarding profile: one row per user, created by the first save.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Profiles::Table)
                    .col(uuid(Profiles::UserId).primary_key())
                    // none, beginner, intermediate or advanced
                    .col(string_len(Profiles::RoboticsExperience, 16))
                    .col(string_len(Profiles::AiMlExperience, 16))
                    .col(text(Profiles::LearningGoals))
                    .col(timestamp_with_time_zone(Profiles::CreatedAt))
                    .col(timestamp_with_time_zone(Profiles::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Profiles::Table, Profiles::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Profiles::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Profiles {
    Table,
    UserId,
    RoboticsExperience,
    AiMlExperience,
    LearningGoals,
    CreatedAt,
    UpdatedAt,
}
