use sea_orm::entity::prelude::*;

/// A sign-in started at an OpenID provider and not yet come back. Its nonce
/// and PKCE verifier are not stored: they are derived from the `state` the
/// browser brings back.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_states")]
pub struct Model {
    /// SHA-256 of the `state` parameter.
    #[sea_orm(primary_key, auto_increment = false)]
    pub hash: Vec<u8>,
    pub provider: String,
    pub redirect_to: String,
    /// The app's own S256 PKCE challenge, bound into the login code.
    pub app_code_challenge: Option<String>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
