//! Configuration: built-in defaults, then `.env`, then `LATCHKEY_*` variables.
//! A bad value stops start-up with one line naming the variable.
//!
//! This module parses and checks values; what is built from them (the
//! redirect allow-list, the browser's origins, the SMTP transport) is built
//! at start-up (`startup`), which reports a bad value the same way.
//! Settings come in sections, each with its defaults and its checks; every
//! field `foo_bar` of every section is the variable `LATCHKEY_FOO_BAR`.

use std::{fmt, net::SocketAddr, path::PathBuf, str::FromStr};

use figment::{
    Figment, Metadata, Profile, Provider,
    value::{Dict, Map, Value},
};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The algorithm new signing keys are generated with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SigningAlg {
    ES256,
    EdDSA,
    RS256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
            SigningAlg::RS256 => "RS256",
        }
    }

    pub fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            SigningAlg::ES256 => jsonwebtoken::Algorithm::ES256,
            SigningAlg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            SigningAlg::RS256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ES256" => Ok(Self::ES256),
            "EdDSA" => Ok(Self::EdDSA),
            "RS256" => Ok(Self::RS256),
            other => Err(format!("unknown algorithm {other:?}; use ES256, EdDSA or RS256")),
        }
    }
}

/// Every setting latchkey reads, by section. Each section is read from the
/// same flat variables (it takes its own and ignores the rest). Secrets are
/// `Secret`s: `{:?}` of a `Config` shows none of them.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub server: Server,
    pub tokens: Tokens,
    pub cookies: Cookies,
    pub mail: Mail,
    pub google: Google,
    pub limits: Limits,
}

/// Where latchkey runs and what it stores.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Server {
    /// `sqlite://…` (the default, under `data/`) or `postgres://…` (which may carry a password).
    pub database_url: Secret,
    pub bind: SocketAddr,
    /// The `iss` of every token and the base of discovery URLs; defaults to `http://<bind>`.
    pub issuer: Option<String>,
    /// The front end that email links point to; defaults to latchkey's own
    /// demo at `<issuer>/demo`.
    pub app_url: Option<String>,
    pub require_email_verification: bool,
    pub db_max_connections: u32,
    /// Keep parsed statements per connection. Off for a pooler in transaction
    /// mode: then no statement outlives its transaction.
    pub database_prepared_statements: bool,
    /// How often expired refresh tokens and sessions are deleted.
    pub cleanup_interval_secs: u64,
    /// Concurrent argon2 hashes; defaults to the number of cores.
    pub hash_concurrency: Option<usize>,
    /// A `tracing` filter, for example `info,latchkey=debug`.
    pub log: String,
    /// `text` (for people) or `json` (one object per line, for collectors).
    pub log_format: LogFormat,
    /// Whether metrics are recorded and `/metrics` served.
    pub metrics_enabled: bool,
    /// Serve `/metrics` on this address instead of the main listener.
    pub metrics_bind: Option<SocketAddr>,
    /// The WebAuthn relying-party id passkeys are bound to; defaults to the
    /// issuer's host (`localhost` while the issuer is the default on a
    /// loopback address).
    pub webauthn_rp_id: Option<String>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            database_url: Secret::new("sqlite://data/latchkey.db?mode=rwc"),
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: None,
            app_url: None,
            require_email_verification: true,
            db_max_connections: 8,
            database_prepared_statements: true,
            cleanup_interval_secs: 600,
            hash_concurrency: None,
            log: "info,sqlx=warn,sea_orm=warn".into(),
            log_format: LogFormat::Text,
            metrics_enabled: true,
            metrics_bind: None,
            webauthn_rp_id: None,
        }
    }
}

impl Server {
    fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database_url.expose();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid("LATCHKEY_DATABASE_URL", "must start with sqlite: or postgres://"));
        }
        if let Some(issuer) = &self.issuer {
            check_http_url("LATCHKEY_ISSUER", issuer)?;
        }
        if let Some(app_url) = &self.app_url {
            check_http_url("LATCHKEY_APP_URL", app_url)?;
        }
        positive(&[
            ("LATCHKEY_DB_MAX_CONNECTIONS", u64::from(self.db_max_connections)),
            ("LATCHKEY_CLEANUP_INTERVAL_SECS", self.cleanup_interval_secs),
        ])?;
        if self.hash_concurrency == Some(0) {
            return Err(invalid("LATCHKEY_HASH_CONCURRENCY", "must be greater than 0"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log).map_err(|e| invalid("LATCHKEY_LOG", e.to_string()))?;
        Ok(())
    }

    /// The issuer URL without a trailing slash.
    pub fn issuer(&self) -> String {
        match &self.issuer {
            Some(issuer) => issuer.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.bind),
        }
    }

    /// The front end that email links point to, without a trailing slash.
    pub fn app_url(&self) -> String {
        match &self.app_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("{}/demo", self.issuer()),
        }
    }

    /// The relying-party id of passkeys.
    pub fn webauthn_rp_id(&self) -> String {
        if let Some(id) = &self.webauthn_rp_id {
            return id.trim().to_ascii_lowercase();
        }
        if self.issuer.is_none() && self.bind.ip().is_loopback() {
            // Browsers take no IP address as a relying party.
            return "localhost".into();
        }
        url::Url::parse(&self.issuer()).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default()
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.expose().starts_with("sqlite:")
    }

    /// The database URL with any password replaced, for logs.
    pub fn redacted_database_url(&self) -> String {
        redact_password(self.database_url.expose())
    }

    /// The origins latchkey itself is served from (its demo, Swagger UI):
    /// the issuer's, and while the issuer is the default on a loopback
    /// address, the same port under both `localhost` and `127.0.0.1`.
    pub fn own_origins(&self) -> Vec<String> {
        let issuer_origin = url::Url::parse(&self.issuer()).map(|u| u.origin().ascii_serialization());
        let mut origins: Vec<String> = issuer_origin.into_iter().collect();
        if self.issuer.is_none() && self.bind.ip().is_loopback() {
            for host in ["localhost", "127.0.0.1"] {
                origins.push(format!("http://{host}:{}", self.bind.port()));
            }
        }
        origins.sort();
        origins.dedup();
        origins
    }
}

/// Signing keys and the lifetimes of access and refresh tokens.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Tokens {
    pub audience: String,
    /// The `client_id` claim of access tokens.
    pub client_id: String,
    pub keys_dir: PathBuf,
    pub signing_alg: SigningAlg,
    /// How often a running server looks for a changed key ring.
    pub keys_reload_ms: u64,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub session_max_age_secs: u64,
    pub refresh_grace_secs: u64,
    /// Clock skew tolerated on `exp`/`nbf`; at most 60 s.
    pub clock_leeway_secs: u64,
    /// How long a resource server may cache a status list (its `ttl`).
    pub status_list_ttl_secs: u64,
    /// Slots (bits) per status list; a list is served at this size from the
    /// start and takes new sessions until half of them are taken.
    pub status_list_size: u32,
    /// The name authenticator apps show for latchkey's TOTP entries.
    pub totp_issuer: String,
}

impl Default for Tokens {
    fn default() -> Self {
        Self {
            audience: "latchkey".into(),
            client_id: "latchkey".into(),
            keys_dir: PathBuf::from("keys"),
            signing_alg: SigningAlg::ES256,
            keys_reload_ms: 2000,
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 7 * 24 * 3600,
            session_max_age_secs: 30 * 24 * 3600,
            refresh_grace_secs: 10,
            clock_leeway_secs: 60,
            status_list_ttl_secs: 30,
            status_list_size: 1 << 20,
            totp_issuer: "latchkey".into(),
        }
    }
}

impl Tokens {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.audience.trim().is_empty() {
            return Err(invalid("LATCHKEY_AUDIENCE", "must not be empty"));
        }
        positive(&[
            ("LATCHKEY_ACCESS_TOKEN_TTL_SECS", self.access_token_ttl_secs),
            ("LATCHKEY_REFRESH_TOKEN_TTL_SECS", self.refresh_token_ttl_secs),
            ("LATCHKEY_SESSION_MAX_AGE_SECS", self.session_max_age_secs),
            ("LATCHKEY_KEYS_RELOAD_MS", self.keys_reload_ms),
            ("LATCHKEY_STATUS_LIST_TTL_SECS", self.status_list_ttl_secs),
        ])?;
        if self.status_list_size < 64 || self.status_list_size > 1 << 24 || !self.status_list_size.is_multiple_of(8) {
            return Err(invalid("LATCHKEY_STATUS_LIST_SIZE", "must be a multiple of 8 from 64 to 16777216"));
        }
        if self.clock_leeway_secs > 60 {
            return Err(invalid("LATCHKEY_CLOCK_LEEWAY_SECS", "must be at most 60"));
        }
        if self.totp_issuer.trim().is_empty() || self.totp_issuer.chars().any(char::is_control) {
            return Err(invalid("LATCHKEY_TOTP_ISSUER", "must be a name without control characters"));
        }
        Ok(())
    }
}

/// Browser apps: cookie mode and CORS.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Cookies {
    /// Origins (`https://app.example.com`) allowed to call latchkey from a
    /// browser with credentials: CORS, and the `Origin` check of cookie mode.
    pub cors_origins: String,
    /// Cookies of cookie mode carry `Secure` (and the `__Host-` prefix).
    /// `false` only for http:// development.
    pub cookie_secure: bool,
    /// `SameSite` of those cookies: `strict`, `lax` or `none`.
    pub cookie_same_site: String,
}

impl Default for Cookies {
    fn default() -> Self {
        Self { cors_origins: String::new(), cookie_secure: true, cookie_same_site: "strict".into() }
    }
}

impl Cookies {
    fn validate(&self) -> Result<(), ConfigError> {
        self.cors_origins().map_err(|e| invalid("LATCHKEY_CORS_ORIGINS", e))?;
        match self.cookie_same_site.as_str() {
            "strict" | "lax" => Ok(()),
            "none" if self.cookie_secure => Ok(()),
            "none" => Err(invalid("LATCHKEY_COOKIE_SAME_SITE", "none needs LATCHKEY_COOKIE_SECURE=true")),
            other => Err(invalid("LATCHKEY_COOKIE_SAME_SITE", format!("{other:?}: use strict, lax or none"))),
        }
    }

    /// `LATCHKEY_CORS_ORIGINS` parsed: each entry an origin, serialised as browsers send it.
    pub fn cors_origins(&self) -> Result<Vec<String>, String> {
        list(&self.cors_origins).map(origin_of).collect()
    }
}

/// The origin of a URL as a browser serialises it: `scheme://host[:port]`,
/// lower-case, the default port left out.
pub fn origin_of(url: &str) -> Result<String, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(format!("{url:?} is not an http(s) origin"));
    }
    if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() || !parsed.username().is_empty() {
        return Err(format!("{url:?}: an origin has no path, query or user"));
    }
    Ok(parsed.origin().ascii_serialization())
}

/// Where mail goes, and the links it carries.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Mail {
    /// Where mail goes: `smtp://host:port` (plain), `smtp://…?tls=required`
    /// (STARTTLS) or `smtps://user:pass@host` (lettre's `from_url` forms).
    /// Unset: each mail is written as an `.eml` file under `mail_dir`.
    pub smtp_url: Option<Secret>,
    /// The `From:` of every mail, `Name <address>` or a bare address.
    pub mail_from: String,
    pub mail_dir: PathBuf,
    pub verify_email_ttl_secs: u64,
    pub password_reset_ttl_secs: u64,
    /// The wait before the first retry of a failed send; it doubles with each
    /// attempt, up to an hour.
    pub mail_retry_ms: u64,
    /// Attempts before a mail is marked failed and left for an operator.
    pub mail_max_attempts: u32,
    /// How often the mail worker looks for due mail queued elsewhere (another
    /// instance, or a retry coming due).
    pub mail_poll_ms: u64,
}

impl Default for Mail {
    fn default() -> Self {
        Self {
            smtp_url: None,
            mail_from: "latchkey <no-reply@localhost>".into(),
            mail_dir: PathBuf::from("data/mail"),
            verify_email_ttl_secs: 24 * 3600,
            password_reset_ttl_secs: 3600,
            mail_retry_ms: 30_000,
            mail_max_attempts: 10,
            mail_poll_ms: 1000,
        }
    }
}

impl Mail {
    fn validate(&self) -> Result<(), ConfigError> {
        positive(&[
            ("LATCHKEY_VERIFY_EMAIL_TTL_SECS", self.verify_email_ttl_secs),
            ("LATCHKEY_PASSWORD_RESET_TTL_SECS", self.password_reset_ttl_secs),
            ("LATCHKEY_MAIL_RETRY_MS", self.mail_retry_ms),
            ("LATCHKEY_MAIL_MAX_ATTEMPTS", u64::from(self.mail_max_attempts)),
            ("LATCHKEY_MAIL_POLL_MS", self.mail_poll_ms),
        ])?;
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid("LATCHKEY_MAIL_FROM", format!("{:?} is not a mail address", self.mail_from)));
        }
        Ok(())
    }

    /// The SMTP URL with any password replaced, for logs.
    pub fn redacted_smtp_url(&self) -> Option<String> {
        self.smtp_url.as_ref().map(|url| redact_password(url.expose()))
    }
}

/// Sign in with Google, or with any OpenID provider.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Google {
    /// The OAuth client of the Google Cloud project. Unset: the Google
    /// endpoints answer 404 `provider_not_configured`.
    pub google_client_id: Option<String>,
    pub google_client_secret: Option<Secret>,
    /// The OpenID issuer; endpoints and keys come from its
    /// `/.well-known/openid-configuration`, so any OpenID provider works.
    pub google_issuer: String,
    /// The callback URL registered at the provider; defaults to
    /// `<issuer>/v1/auth/oauth/google/callback`.
    pub google_redirect_uri: Option<String>,
    /// Where a sign-in may send the browser back to, besides anywhere under
    /// the app URL: comma-separated URL prefixes (same origin, path under).
    pub redirect_allow_list: String,
}

impl Default for Google {
    fn default() -> Self {
        Self {
            google_client_id: None,
            google_client_secret: None,
            google_issuer: "https://accounts.google.com".into(),
            google_redirect_uri: None,
            redirect_allow_list: String::new(),
        }
    }
}

impl Google {
    fn validate(&self) -> Result<(), ConfigError> {
        match (&self.google_client_id, &self.google_client_secret) {
            (Some(_), None) => {
                return Err(invalid("LATCHKEY_GOOGLE_CLIENT_SECRET", "is required with LATCHKEY_GOOGLE_CLIENT_ID"));
            }
            (None, Some(_)) => {
                return Err(invalid("LATCHKEY_GOOGLE_CLIENT_ID", "is required with LATCHKEY_GOOGLE_CLIENT_SECRET"));
            }
            _ => {}
        }
        check_http_url("LATCHKEY_GOOGLE_ISSUER", &self.google_issuer)?;
        if let Some(uri) = &self.google_redirect_uri {
            check_http_url("LATCHKEY_GOOGLE_REDIRECT_URI", uri)?;
        }
        Ok(())
    }

    /// The callback URL registered at Google (or the configured OpenID
    /// provider), given latchkey's issuer.
    pub fn redirect_uri(&self, issuer: &str) -> String {
        match &self.google_redirect_uri {
            Some(uri) => uri.clone(),
            None => format!("{issuer}/v1/auth/oauth/google/callback"),
        }
    }
}

/// Rate limits, and the limits of the listener and of request bodies.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// `false` turns every rate limit off (load tests, benchmarks).
    pub rate_limit_enabled: bool,
    /// Password checks per account (address) per login window.
    pub rate_limit_login_per_account: u32,
    /// Login attempts per client IP per login window.
    pub rate_limit_login_per_ip: u32,
    pub rate_limit_login_window_secs: u64,
    pub rate_limit_signup_per_ip: u32,
    /// Sign-ups per address per signup window (each may mail the address).
    pub rate_limit_signup_per_address: u32,
    pub rate_limit_signup_window_secs: u64,
    /// Verification resends and reset requests per address per mail window.
    pub rate_limit_mail_per_address: u32,
    pub rate_limit_mail_per_ip: u32,
    pub rate_limit_mail_window_secs: u64,
    pub rate_limit_refresh_per_session: u32,
    pub rate_limit_refresh_window_secs: u64,
    /// Peers whose `Forwarded`/`X-Forwarded-For` headers are believed:
    /// comma-separated addresses or CIDR ranges. Empty: the socket peer is the client.
    pub trusted_proxies: String,
    pub max_body_bytes: usize,
    /// A connection that reads and writes nothing for this long is dropped.
    pub idle_timeout_secs: u64,
    /// A request head (request line and headers) must arrive whole within
    /// this long of the connection's last answer (or of its opening); an idle
    /// keep-alive connection is closed after it too.
    pub header_timeout_secs: u64,
    /// Open connections, at most; more are closed as they arrive. Lowered at
    /// start-up to what the file-descriptor limit leaves room for.
    pub max_connections: usize,
    /// Open connections per peer address, at most (trusted proxies excepted).
    pub max_connections_per_ip: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            rate_limit_enabled: true,
            rate_limit_login_per_account: 5,
            rate_limit_login_per_ip: 100,
            rate_limit_login_window_secs: 900,
            rate_limit_signup_per_ip: 3,
            rate_limit_signup_per_address: 3,
            rate_limit_signup_window_secs: 3600,
            rate_limit_mail_per_address: 3,
            rate_limit_mail_per_ip: 30,
            rate_limit_mail_window_secs: 3600,
            rate_limit_refresh_per_session: 120,
            rate_limit_refresh_window_secs: 60,
            trusted_proxies: String::new(),
            max_body_bytes: 16 * 1024,
            idle_timeout_secs: 30,
            header_timeout_secs: 10,
            max_connections: 1024,
            max_connections_per_ip: 64,
        }
    }
}

impl Limits {
    fn validate(&self) -> Result<(), ConfigError> {
        positive(&[
            ("LATCHKEY_RATE_LIMIT_LOGIN_PER_ACCOUNT", u64::from(self.rate_limit_login_per_account)),
            ("LATCHKEY_RATE_LIMIT_LOGIN_PER_IP", u64::from(self.rate_limit_login_per_ip)),
            ("LATCHKEY_RATE_LIMIT_LOGIN_WINDOW_SECS", self.rate_limit_login_window_secs),
            ("LATCHKEY_RATE_LIMIT_SIGNUP_PER_IP", u64::from(self.rate_limit_signup_per_ip)),
            ("LATCHKEY_RATE_LIMIT_SIGNUP_PER_ADDRESS", u64::from(self.rate_limit_signup_per_address)),
            ("LATCHKEY_RATE_LIMIT_SIGNUP_WINDOW_SECS", self.rate_limit_signup_window_secs),
            ("LATCHKEY_RATE_LIMIT_MAIL_PER_ADDRESS", u64::from(self.rate_limit_mail_per_address)),
            ("LATCHKEY_RATE_LIMIT_MAIL_PER_IP", u64::from(self.rate_limit_mail_per_ip)),
            ("LATCHKEY_RATE_LIMIT_MAIL_WINDOW_SECS", self.rate_limit_mail_window_secs),
            ("LATCHKEY_RATE_LIMIT_REFRESH_PER_SESSION", u64::from(self.rate_limit_refresh_per_session)),
            ("LATCHKEY_RATE_LIMIT_REFRESH_WINDOW_SECS", self.rate_limit_refresh_window_secs),
            ("LATCHKEY_MAX_BODY_BYTES", self.max_body_bytes as u64),
            ("LATCHKEY_IDLE_TIMEOUT_SECS", self.idle_timeout_secs),
            ("LATCHKEY_HEADER_TIMEOUT_SECS", self.header_timeout_secs),
            ("LATCHKEY_MAX_CONNECTIONS", self.max_connections as u64),
            ("LATCHKEY_MAX_CONNECTIONS_PER_IP", self.max_connections_per_ip as u64),
        ])?;
        self.trusted_proxies().map_err(|e| invalid("LATCHKEY_TRUSTED_PROXIES", e))?;
        Ok(())
    }

    /// `LATCHKEY_TRUSTED_PROXIES` parsed: each entry an address or a CIDR range.
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, String> {
        list(&self.trusted_proxies)
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("{p:?} is not an IP address or CIDR range"))
            })
            .collect()
    }
}

/// A configuration problem, phrased as one line naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {var}: {message}")]
pub struct ConfigError {
    pub var: String,
    pub message: String,
}

pub fn invalid(var: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { var: var.into(), message: message.into() }
}

/// The `LATCHKEY_*` variables of the environment (values trimmed), parsed
/// the way figment parses environment variables (`8080` a number, `true` a
/// boolean, anything else a string).
struct Vars(Vec<(String, String)>);

const PREFIX: &str = "LATCHKEY_";

impl Provider for Vars {
    fn metadata(&self) -> Metadata {
        Metadata::named("`LATCHKEY_` environment variable(s)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let dict: Dict = self
            .0
            .iter()
            .filter_map(|(k, v)| {
                let key =
                    k.get(..PREFIX.len()).filter(|p| p.eq_ignore_ascii_case(PREFIX)).map(|_| &k[PREFIX.len()..])?;
                let value: Value = v.trim().parse().expect("parsing a value is infallible");
                Some((key.to_ascii_lowercase(), value))
            })
            .collect();
        Ok(Profile::Default.collect(dict))
    }
}

impl Config {
    /// Reads `.env` (if present) and the `LATCHKEY_*` environment.
    pub fn load() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_vars(std::env::vars())
    }

    /// The configuration these `LATCHKEY_*` variables give (others are ignored).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let figment = Figment::new().merge(Vars(vars.into_iter().collect()));
        let config = Config {
            server: extract(&figment)?,
            tokens: extract(&figment)?,
            cookies: extract(&figment)?,
            mail: extract(&figment)?,
            google: extract(&figment)?,
            limits: extract(&figment)?,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.tokens.validate()?;
        self.cookies.validate()?;
        self.mail.validate()?;
        self.google.validate()?;
        self.limits.validate()
    }
}

/// One section of the configuration from the variables.
fn extract<'a, T: Deserialize<'a>>(figment: &Figment) -> Result<T, ConfigError> {
    figment.extract().map_err(|e| {
        let var = format!("{PREFIX}{}", e.path.join("_").to_uppercase());
        invalid(&var, e.kind.to_string())
    })
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|p| !p.is_empty())
}

fn positive(values: &[(&str, u64)]) -> Result<(), ConfigError> {
    match values.iter().find(|(_, value)| *value == 0) {
        Some((var, _)) => Err(invalid(var, "must be greater than 0")),
        None => Ok(()),
    }
}

fn check_http_url(var: &str, value: &str) -> Result<(), ConfigError> {
    let ok = (value.starts_with("http://") || value.starts_with("https://"))
        && value.parse::<poem::http::Uri>().is_ok_and(|u| u.host().is_some());
    if ok { Ok(()) } else { Err(invalid(var, format!("{value:?} is not an http(s) URL"))) }
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn every_section_reads_its_flat_variables() {
        let config = vars(&[
            ("LATCHKEY_BIND", "0.0.0.0:9000"),
            ("LATCHKEY_ACCESS_TOKEN_TTL_SECS", "600"),
            ("LATCHKEY_COOKIE_SECURE", "false"),
            ("LATCHKEY_MAIL_FROM", "Auth <auth@example.com>"),
            ("LATCHKEY_GOOGLE_ISSUER", "http://127.0.0.1:9999"),
            ("LATCHKEY_RATE_LIMIT_LOGIN_PER_IP", "7"),
            ("PATH", "/usr/bin"),
        ])
        .unwrap();
        assert_eq!(config.server.bind.port(), 9000);
        assert_eq!(config.tokens.access_token_ttl_secs, 600);
        assert!(!config.cookies.cookie_secure);
        assert_eq!(config.mail.mail_from, "Auth <auth@example.com>");
        assert_eq!(config.google.google_issuer, "http://127.0.0.1:9999");
        assert_eq!(config.limits.rate_limit_login_per_ip, 7);
        assert_eq!(config.tokens.refresh_grace_secs, 10, "the rest keep their defaults");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (var, value) in [
            ("LATCHKEY_BIND", "not-an-address"),
            ("LATCHKEY_ACCESS_TOKEN_TTL_SECS", "soon"),
            ("LATCHKEY_SIGNING_ALG", "HS256"),
            ("LATCHKEY_RATE_LIMIT_MAIL_PER_IP", "0"),
            ("LATCHKEY_CORS_ORIGINS", "https://app.example.com/path"),
            ("LATCHKEY_COOKIE_SAME_SITE", "sometimes"),
        ] {
            let error = vars(&[(var, value)]).unwrap_err();
            assert_eq!(error.var, var, "{error}");
        }
    }

    #[test]
    fn debug_of_the_configuration_shows_no_secret() {
        let mut config = Config::default();
        config.server.database_url = Secret::new("postgres://u:db-secret@h/db");
        config.mail.smtp_url = Some(Secret::new("smtps://u:smtp-secret@mail.example"));
        config.google.google_client_secret = Some(Secret::new("google-secret"));
        let shown = format!("{config:?}");
        for secret in ["db-secret", "smtp-secret", "google-secret"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    #[test]
    fn redacts_the_password_of_a_database_url() {
        assert_eq!(redact_password("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_password("sqlite://data/x.db"), "sqlite://data/x.db");
    }

    #[test]
    fn origins_are_serialised_as_browsers_send_them() {
        assert_eq!(origin_of("https://App.Example.com:443/").unwrap(), "https://app.example.com");
        assert_eq!(origin_of("http://localhost:3000").unwrap(), "http://localhost:3000");
        assert!(origin_of("https://app.example.com/path").is_err());
        assert!(origin_of("ftp://x.example.com").is_err());
        assert!(origin_of("*").is_err());
    }
}
