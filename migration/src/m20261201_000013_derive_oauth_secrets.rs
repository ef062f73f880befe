use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A started provider sign-in no longer stores its nonce and PKCE verifier:
/// both are derived (HMAC under a server secret) from the `state` that only
/// the browser and the provider see, so the table holds nothing usable.
/// Sign-ins in progress during the upgrade must be started again.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.exec_stmt(Query::delete().from_table(OauthStates::Table).to_owned()).await?;
        // One column per statement: SQLite alters one thing at a time.
        for column in [OauthStates::Nonce, OauthStates::PkceVerifier] {
            manager.alter_table(Table::alter().table(OauthStates::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.exec_stmt(Query::delete().from_table(OauthStates::Table).to_owned()).await?;
        for column in [OauthStates::Nonce, OauthStates::PkceVerifier] {
            manager
                .alter_table(Table::alter().table(OauthStates::Table).add_column(string_len(column, 128)).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum OauthStates {
    Table,
    Nonce,
    PkceVerifier,
}
