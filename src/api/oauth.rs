use poem::Request;
use poem_openapi::{ApiResponse, OpenApi, param::Query, payload::Json};

use super::{
    ApiError, ApiTags, client_info,
    types::{OAuthExchangeRequest, OAuthTokenResponse, TokenDelivery},
};
use crate::{
    AppState,
    browser::cookies,
    oauth::{self, Callback},
};

#[derive(Default)]
pub struct OAuthApi;

type Data<'a> = poem::web::Data<&'a AppState>;

#[derive(ApiResponse)]
pub enum Redirect {
    /// Go to `Location`.
    #[oai(status = 302)]
    Found(
        #[oai(header = "Location")] String,
        #[oai(header = "Cache-Control")] String,
        /// The return URL may carry a login code: it is not passed on as a referrer.
        #[oai(header = "Referrer-Policy")]
        String,
    ),
}

impl Redirect {
    fn to(url: url::Url) -> Self {
        Self::Found(url.into(), super::no_store(), "no-referrer".into())
    }
}

#[derive(ApiResponse)]
pub enum ExchangeResponse {
    /// New tokens, and whether this sign-in created the account. Responses carry `Cache-Control: no-store`.
    #[oai(status = 200)]
    Ok(Json<OAuthTokenResponse>, #[oai(header = "Cache-Control")] String),
}

#[OpenApi(prefix_path = "/v1/auth/oauth", tag = "ApiTags::Auth")]
impl OAuthApi {
    /// Sign in with Google: start
    ///
    /// Open this in the browser (a link or `location.assign`, not `fetch`).
    /// It answers 302 to Google with PKCE (S256), a single-use `state` valid
    /// 10 minutes and a `nonce`. `redirect_to` is where the browser comes back
    /// to (default: `LATCHKEY_APP_URL`); it must lie under `LATCHKEY_APP_URL`
    /// or an entry of `LATCHKEY_REDIRECT_ALLOW_LIST`. The sign-in is bound to
    /// this browser by an `HttpOnly` cookie (`__Host-lk_signin`): the callback
    /// is refused in any other. An app that sends `code_challenge` (PKCE S256,
    /// its own) gets a login code that only its `code_verifier` can exchange,
    /// so a code planted in its return URL is useless. If Google cannot be
    /// reached the browser goes straight back with `error=provider_unavailable`.
    /// Each start counts against the client IP's login attempts. Errors: 400
    /// `invalid_redirect`, `invalid_code_challenge`; 404
    /// `provider_not_configured`; 429 `rate_limited`.
    #[oai(path = "/google/authorize", method = "get", operation_id = "googleAuthorize")]
    async fn authorize(
        &self,
        state: Data<'_>,
        req: &Request,
        /// An app URL to come back to.
        redirect_to: Query<Option<String>>,
        /// The app's PKCE challenge: base64url(SHA-256(code_verifier)).
        code_challenge: Query<Option<String>>,
        /// `S256` (the only method; the default when `code_challenge` is sent).
        code_challenge_method: Query<Option<String>>,
    ) -> Result<Redirect, ApiError> {
        let redirect_to = redirect_to.0.unwrap_or_else(|| state.config.server.app_url());
        let request = oauth::Begin {
            redirect_to: &redirect_to,
            code_challenge: code_challenge.0.as_deref(),
            code_challenge_method: code_challenge_method.0.as_deref(),
        };
        let started = oauth::begin(&state, request, &client_info(req)).await?;
        if let Some(bound) = &started.state {
            cookies::set(req, state.browser.sign_in_cookie_line(bound));
        }
        Ok(Redirect::to(started.url))
    }

    /// Sign in with Google: the provider's return
    ///
    /// Google sends the browser here. It answers 302 to the sign-in's
    /// `redirect_to` with either `code` (a one-time login code, valid 60 s:
    /// trade it at `POST /v1/auth/oauth/exchange`) or `error`:
    /// `access_denied`, `provider_error`, `issuer_mismatch`, `invalid_grant`,
    /// `nonce_mismatch`, `invalid_id_token`, `email_not_verified` (Google does
    /// not vouch for the address), `provider_unavailable`, `server_error`.
    /// A failed sign-in creates and changes nothing. Errors (no safe place to
    /// return to): 400 `invalid_state` (unknown, used or expired, or started
    /// in another browser); 404 `provider_not_configured`.
    #[oai(path = "/google/callback", method = "get", operation_id = "googleCallback")]
    async fn callback(
        &self,
        state: Data<'_>,
        req: &Request,
        /// The `state` of the sign-in.
        #[oai(name = "state")]
        state_param: Query<Option<String>>,
        /// The provider's authorization code.
        code: Query<Option<String>>,
        /// The provider's error, when there is no code.
        error: Query<Option<String>>,
        /// The provider's issuer identifier (RFC 9207).
        iss: Query<Option<String>>,
    ) -> Result<Redirect, ApiError> {
        let bound_state = cookies::get(req, state.browser.sign_in_cookie()).map(str::to_string);
        if bound_state.is_some() {
            cookies::set(req, state.browser.sign_in_cookie_cleared());
        }
        let query = Callback { state: state_param.0, code: code.0, error: error.0, iss: iss.0, bound_state };
        let url = oauth::callback(&state, query, &client_info(req)).await?;
        Ok(Redirect::to(url))
    }

    /// Trade a login code for tokens
    ///
    /// Takes the `code` the browser brought back from a provider sign-in and
    /// starts a session (method `google`). `is_new_user` says the sign-in
    /// created the account; `onboarding_required` that the onboarding
    /// profile is still to be filled in. A code works once: presenting it
    /// again fails and revokes the session it opened. If the sign-in was
    /// started with `code_challenge`, `code_verifier` is required (and must
    /// not be sent otherwise). `token_delivery` works as at login. Errors:
    /// 400 `invalid_code`; 403 `invalid_origin`, and `mfa_required` for an
    /// account with a second factor (as at login: `mfa_token` and `methods`,
    /// to continue at `POST /v1/auth/mfa/verify`; the code is used up).
    #[oai(path = "/exchange", method = "post", operation_id = "oauthExchange")]
    async fn exchange(
        &self,
        state: Data<'_>,
        req: &Request,
        body: Json<OAuthExchangeRequest>,
    ) -> Result<ExchangeResponse, ApiError> {
        let mode = body.0.token_delivery.unwrap_or_default();
        if mode == TokenDelivery::Cookie {
            state.browser.check_origin_if_sent(req)?;
        }
        let verifier = body.0.code_verifier.as_deref();
        let signed_in = oauth::exchange(&state, &body.0.code, verifier, client_info(req)).await?;
        let tokens = super::auth::deliver(&state, req, signed_in.tokens, mode);
        let response = OAuthTokenResponse { is_new_user: signed_in.is_new_user, tokens };
        Ok(ExchangeResponse::Ok(Json(response), super::no_store()))
    }
}
