use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Lets the app bind a provider sign-in to itself (RFC 7636 between the app
/// and latchkey): the S256 `code_challenge` it sends when starting a sign-in
/// travels with the pending state into the login code, and the code is only
/// exchanged with the matching `code_verifier`.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OauthStates::Table)
                    .add_column(string_len_null(OauthStates::AppCodeChallenge, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OauthLoginCodes::Table)
                    .add_column(string_len_null(OauthLoginCodes::CodeChallenge, 64))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(OauthLoginCodes::Table).drop_column(OauthLoginCodes::CodeChallenge).to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table(OauthStates::Table).drop_column(OauthStates::AppCodeChallenge).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum OauthStates {
    Table,
    AppCodeChallenge,
}

#[derive(DeriveIden)]
enum OauthLoginCodes {
    Table,
    CodeChallenge,
}
