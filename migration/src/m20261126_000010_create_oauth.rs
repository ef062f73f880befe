use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261126_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Sign-in through an OpenID provider:
/// * `oauth_states`: one row per started sign-in, keyed by the SHA-256 of its
///   `state`, holding what the callback needs (PKCE verifier, nonce, where to
///   send the browser back); taken once, 10 minutes at most;
/// * `oauth_login_codes`: the one-time codes handed to the app after a
///   successful callback (hashed, 60 s, single use);
/// * `identities`: which provider account (issuer-scoped `subject`) belongs to
///   which user.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OauthStates::Table)
                    .col(blob(OauthStates::Hash).primary_key())
                    .col(string_len(OauthStates::Provider, 32))
                    .col(string_len(OauthStates::Nonce, 64))
                    .col(string_len(OauthStates::PkceVerifier, 128))
                    .col(text(OauthStates::RedirectTo))
                    .col(timestamp_with_time_zone(OauthStates::CreatedAt))
                    .col(timestamp_with_time_zone(OauthStates::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OauthLoginCodes::Table)
                    .col(blob(OauthLoginCodes::Hash).primary_key())
                    .col(uuid(OauthLoginCodes::UserId))
                    .col(string_len(OauthLoginCodes::Provider, 32))
                    .col(boolean(OauthLoginCodes::IsNewUser))
                    .col(timestamp_with_time_zone(OauthLoginCodes::CreatedAt))
                    .col(timestamp_with_time_zone(OauthLoginCodes::ExpiresAt))
                    .col(timestamp_with_time_zone_null(OauthLoginCodes::UsedAt))
                    // The session the code was exchanged for: revoked if the code comes back.
                    .col(uuid_null(OauthLoginCodes::SessionId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(OauthLoginCodes::Table, OauthLoginCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Identities::Table)
                    .col(string_len(Identities::Provider, 32))
                    .col(string_len(Identities::Subject, 255))
                    .col(uuid(Identities::UserId))
                    .col(string_len(Identities::Email, 320))
                    .col(timestamp_with_time_zone(Identities::CreatedAt))
                    .col(timestamp_with_time_zone(Identities::LastLoginAt))
                    .primary_key(Index::create().col(Identities::Provider).col(Identities::Subject))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Identities::Table, Identities::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_identities_user_id")
                    .table(Identities::Table)
                    .col(Identities::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [Identities::Table.into_iden(), OauthLoginCodes::Table.into_iden(), OauthStates::Table.into_iden()]
        {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum OauthStates {
    Table,
    Hash,
    Provider,
    Nonce,
    PkceVerifier,
    RedirectTo,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum OauthLoginCodes {
    Table,
    Hash,
    UserId,
    Provider,
    IsNewUser,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    SessionId,
}

#[derive(DeriveIden)]
enum Identities {
    Table,
    Provider,
    Subject,
    UserId,
    Email,
    CreatedAt,
    LastLoginAt,
}
