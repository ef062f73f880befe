use sea_orm::entity::prelude::*;

/// A provider account linked to a user.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "identities")]
pub struct Model {
    /// `google` (the provider's name in latchkey's paths).
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider: String,
    /// The provider's `sub` for the account.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subject: String,
    pub user_id: Uuid,
    /// The address the provider vouched for at the last login.
    pub email: String,
    pub created_at: DateTimeUtc,
    pub last_login_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
