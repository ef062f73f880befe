use sea_orm::entity::prelude::*;

/// A one-time code the app exchanges for tokens after a provider sign-in.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_login_codes")]
pub struct Model {
    /// SHA-256 of the code; the code itself only travels in the redirect.
    #[sea_orm(primary_key, auto_increment = false)]
    pub hash: Vec<u8>,
    pub user_id: Uuid,
    pub provider: String,
    pub is_new_user: bool,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
    pub session_id: Option<Uuid>,
    /// The app's S256 PKCE challenge: the exchange must bring its verifier.
    pub code_challenge: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
