//! The signed-in user: someone whose access token verified *and* whose
//! session is still live. Only `check` makes a `LiveUser`, and every use
//! case for a signed-in user takes one, so an endpoint cannot reach them
//! without the check: the bearer guard (`api::security`) makes it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{AppState, store::users, token::AccessClaims};

/// A user as they see themselves.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    /// The form uniqueness, look-ups and limits use.
    pub email_key: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The owner of a verified access token whose session is live. Its fields
/// are private, so `check` is the only way to make one.
#[derive(Debug, Clone)]
pub struct LiveUser {
    account: Account,
    session_id: Uuid,
}

impl LiveUser {
    pub fn account(&self) -> &Account {
        &self.account
    }

    pub fn into_account(self) -> Account {
        self.account
    }

    pub fn user_id(&self) -> Uuid {
        self.account.id
    }

    /// The session of the access token.
    pub fn session_id(&self) -> Uuid {
        self.session_id
    }
}

/// The owner of `claims`, if the session they name is still live: one query.
pub async fn check(state: &AppState, claims: &AccessClaims) -> Result<Option<LiveUser>, sea_orm::DbErr> {
    let user = users::find_with_live_session(&state.db, claims.sub, claims.sid, state.clock.now()).await?;
    Ok(user.map(|user| LiveUser {
        account: Account {
            id: user.id,
            email: user.email,
            email_key: user.email_key,
            email_verified: user.email_verified_at.is_some(),
            name: user.name,
            created_at: user.created_at,
        },
        session_id: claims.sid,
    }))
}
