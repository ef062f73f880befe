//! The status lists this instance serves (README "Revocation"), signed and
//! kept in memory: a request only reads them. A background task
//! (`startup`) looks at every list's version each second and rebuilds the
//! ones whose bits changed (on whichever instance), and re-signs a list
//! before its token's `exp` comes near or when the active key changes. A list
//! another instance started a moment ago is built on its first request.

use std::{collections::HashMap, sync::Arc};

use arc_swap::ArcSwap;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::{
    store::status::{self, ListVersion},
    token::{
        KeyRing,
        access::status_list_uri,
        status::{self as token, StatusList, StatusListClaims},
    },
};

/// How long a signed list token is valid (`exp` - `iat`).
const VALIDITY: Duration = Duration::hours(24);
/// A list is signed again once its token is this old.
const RESIGN_AFTER: Duration = Duration::hours(1);

/// One list, ready to send.
pub struct Served {
    pub jwt: Bytes,
    pub etag: String,
    version: i64,
    kid: String,
    signed_at: DateTime<Utc>,
}

pub struct StatusLists {
    issuer: String,
    ttl_secs: u64,
    served: ArcSwap<HashMap<Uuid, Arc<Served>>>,
}

impl StatusLists {
    pub fn new(issuer: String, ttl_secs: u64) -> Self {
        Self { issuer, ttl_secs, served: ArcSwap::default() }
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    pub fn uri(&self, id: Uuid) -> String {
        status_list_uri(&self.issuer, id)
    }

    /// The URI of every list still served, newest last (from the database:
    /// a list another instance started a moment ago is in it too).
    pub async fn all_uris(&self, db: &impl ConnectionTrait) -> anyhow::Result<Vec<String>> {
        Ok(status::versions(db).await?.into_iter().map(|l| self.uri(l.id)).collect())
    }

    /// The list as last built here, if this instance knows it.
    pub fn get(&self, id: Uuid) -> Option<Arc<Served>> {
        self.served.load().get(&id).cloned()
    }

    /// The list, built now if this instance does not know it yet; `None`
    /// when there is no such list.
    pub async fn get_or_load(
        &self,
        db: &impl ConnectionTrait,
        ring: &KeyRing,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<Arc<Served>>> {
        if let Some(served) = self.get(id) {
            return Ok(Some(served));
        }
        let Some(list) = status::version(db, id).await? else {
            return Ok(None);
        };
        let built = Arc::new(self.build(db, ring, list, now).await?);
        self.served.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.insert(id, built.clone());
            map
        });
        Ok(Some(built))
    }

    /// Brings every list up to date with the database: rebuilds those whose
    /// bits changed, re-signs old or other-key ones, forgets retired ones.
    pub async fn refresh(&self, db: &impl ConnectionTrait, ring: &KeyRing, now: DateTime<Utc>) -> anyhow::Result<()> {
        let current = self.served.load_full();
        let mut next = HashMap::new();
        let mut changed = false;
        for list in status::versions(db).await? {
            let fresh = current.get(&list.id).filter(|s| {
                s.version == list.version && s.kid == ring.active().kid && now - s.signed_at < RESIGN_AFTER
            });
            let served = match fresh {
                Some(served) => served.clone(),
                None => {
                    changed = true;
                    Arc::new(self.build(db, ring, list, now).await?)
                }
            };
            next.insert(list.id, served);
        }
        if changed || next.len() != current.len() {
            self.served.store(Arc::new(next));
        }
        Ok(())
    }

    async fn build(
        &self,
        db: &impl ConnectionTrait,
        ring: &KeyRing,
        list: ListVersion,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Served> {
        let invalid = status::invalid_indices(db, list.id).await?;
        let bytes = token::pack(list.size, &invalid);
        let lst = token::encode_list(&bytes);
        let claims = StatusListClaims {
            sub: self.uri(list.id),
            iat: now.timestamp(),
            exp: (now + VALIDITY).timestamp(),
            ttl: self.ttl_secs,
            status_list: StatusList { bits: 1, lst },
        };
        let (jwt, kid) = token::sign(ring, &claims)?;
        let digest = ring::digest::digest(&ring::digest::SHA256, jwt.as_bytes());
        let etag = format!("\"{}\"", &crate::token::opaque::encode("", digest.as_ref().try_into()?)[..22]);
        Ok(Served { jwt: Bytes::from(jwt), etag, version: list.version, kid, signed_at: now })
    }
}
