//! What any use case can fail with besides its own answers: a rate limit,
//! or an internal failure (a database error, a bug). Each use case's error
//! enum carries it as one variant, `Fault`, so these two are defined (and
//! turned into HTTP answers, in `api::problems`) once.

use std::time::Duration;

/// Over the limit: how many were allowed, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub limit: u32,
    pub retry_after: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("rate limited")]
    RateLimited(Limited),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sea_orm::DbErr> for Fault {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(e.into())
    }
}

/// Gives a use-case error enum with a `Fault(Fault)` variant the
/// conversions `?` needs: from a `Fault`, a database error and any
/// `anyhow::Error`.
macro_rules! carries_fault {
    ($($error:ty),+ $(,)?) => {$(
        impl From<$crate::fault::Fault> for $error {
            fn from(fault: $crate::fault::Fault) -> Self {
                Self::Fault(fault)
            }
        }

        impl From<sea_orm::DbErr> for $error {
            fn from(e: sea_orm::DbErr) -> Self {
                Self::Fault(e.into())
            }
        }

        impl From<anyhow::Error> for $error {
            fn from(e: anyhow::Error) -> Self {
                Self::Fault(e.into())
            }
        }
    )+};
}

pub(crate) use carries_fault;
