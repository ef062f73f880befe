//! Onboarding profiles: one row per user, written whole by each save.

use chrono::{DateTime, Utc};
use entity::profile;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, sea_query::OnConflict};
use uuid::Uuid;

type Profile = profile::Model;

/// A profile as saved.
pub struct ProfileFields {
    pub robotics_experience: String,
    pub ai_ml_experience: String,
    pub learning_goals: String,
}

pub async fn find(db: &impl ConnectionTrait, user_id: Uuid) -> Result<Option<Profile>, DbErr> {
    profile::Entity::find_by_id(user_id).one(db).await
}

pub async fn exists(db: &impl ConnectionTrait, user_id: Uuid) -> Result<bool, DbErr> {
    Ok(profile::Entity::find_by_id(user_id).count(db).await? > 0)
}

/// Removes the profile, if there is one.
pub async fn delete(db: &impl ConnectionTrait, user_id: Uuid) -> Result<(), DbErr> {
    profile::Entity::delete_by_id(user_id).exec(db).await?;
    Ok(())
}

/// Creates or replaces the profile; returns it as stored. One statement, so
/// two concurrent saves cannot both try to create it.
pub async fn save(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    fields: ProfileFields,
    now: DateTime<Utc>,
) -> Result<Profile, DbErr> {
    let row = profile::ActiveModel {
        user_id: Set(user_id),
        robotics_experience: Set(fields.robotics_experience),
        ai_ml_experience: Set(fields.ai_ml_experience),
        learning_goals: Set(fields.learning_goals),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let keep_created_at = OnConflict::column(profile::Column::UserId)
        .update_columns([
            profile::Column::RoboticsExperience,
            profile::Column::AiMlExperience,
            profile::Column::LearningGoals,
            profile::Column::UpdatedAt,
        ])
        .to_owned();
    profile::Entity::insert(row).on_conflict(keep_created_at).exec_with_returning(db).await
}
