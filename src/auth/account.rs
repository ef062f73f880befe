use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{AppState, store, token::AccessClaims};

/// A user as the API shows them.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The owner of an access token, if its session is still live.
pub async fn current(state: &AppState, claims: &AccessClaims) -> anyhow::Result<Option<Account>> {
    let user = store::users::find_with_live_session(&state.db, claims.sub, claims.sid, Utc::now()).await?;
    Ok(user.map(|user| Account {
        id: user.id,
        email: user.email,
        email_verified: user.email_verified_at.is_some(),
        name: user.name,
        created_at: user.created_at,
    }))
}
