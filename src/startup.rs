//! Building the state and serving it.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use arc_swap::ArcSwap;

use crate::{
    AppState, Config, api,
    auth::PasswordHasher,
    browser::Browser,
    limits::{LimitSettings, Limiter},
    mail, net,
    oauth::provider::OidcProvider,
    state::State,
    store,
    token::{
        KeyRing,
        access::TokenSettings,
        keyfile::KeyDir,
        keyring::{self},
        provider,
        verified::VerifiedTokens,
    },
};

/// Loads (or, when the folder holds none, generates) the key ring, connects
/// to the database and migrates it.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    provider::install();
    let dir = KeyDir::new(&config.keys_dir);
    if dir.ensure(config.signing_alg)? {
        tracing::warn!(
            "keys: generated a new {} dev key ring in {}/ (private keys mode 0600, git-ignored)",
            config.signing_alg,
            config.keys_dir.display()
        );
    }
    let ring = KeyRing::load(&dir).context("loading the key ring")?;
    tracing::info!(
        "keys: {} keys in {}/, signing with {} kid={}",
        ring.keys().len(),
        config.keys_dir.display(),
        format!("{:?}", ring.active().alg),
        ring.active().kid
    );
    let secret = dir.refresh_secret()?;
    let db = store::connect(&config).await?;
    let tokens = TokenSettings {
        issuer: config.issuer(),
        audience: config.audience.clone(),
        client_id: config.client_id.clone(),
        ttl_secs: config.access_token_ttl_secs as i64,
        leeway_secs: config.clock_leeway_secs,
    };
    let hash_concurrency =
        config.hash_concurrency.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let trusted_proxies = config.trusted_proxies().map_err(anyhow::Error::msg)?;
    let redirects = config.redirect_allow_list().map_err(anyhow::Error::msg)?;
    let google = OidcProvider::google(&config)?;
    let refresh_secret = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    let browser = Browser::new(&config, &refresh_secret).map_err(anyhow::Error::msg)?;
    let limits = Limiter::new(
        LimitSettings::from_config(&config),
        crate::secret::derive_key(&refresh_secret, "latchkey rate-limit subjects v1"),
    );
    let sign_in_key = crate::secret::derive_key(&refresh_secret, "latchkey sign-in values v1");
    if !config.cookie_secure {
        tracing::warn!(
            "LATCHKEY_COOKIE_SECURE=false: session cookies go without Secure and without the __Host- prefix, \
             so a sibling subdomain could plant its own; use this only for http:// development on one host"
        );
    }
    if google.is_some() {
        tracing::info!(
            "sign in with Google: issuer {}, callback {}",
            config.google_issuer,
            config.google_redirect_uri()
        );
    }
    Ok(AppState::new(State {
        config,
        db,
        keys: Arc::new(ArcSwap::from_pointee(ring)),
        tokens,
        refresh_secret,
        hasher: PasswordHasher::new(hash_concurrency),
        verified: VerifiedTokens::new(4096),
        mail_queue: Arc::new(tokio::sync::Notify::new()),
        limits,
        sign_in_key,
        trusted_proxies,
        google,
        browser: Arc::new(browser),
        redirects,
    }))
}

/// Serves until SIGINT or SIGTERM, then drains in-flight requests.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    tracing::info!("latchkey {} starting", env!("CARGO_PKG_VERSION"));
    match store::sqlite_path(config.database_url.expose()) {
        Some(path) => tracing::info!(
            "database: SQLite file {} (set LATCHKEY_DATABASE_URL=postgres://… for Postgres)",
            path.display()
        ),
        None => tracing::info!("database: {}", config.redacted_database_url()),
    }
    let (mailer, mail_line) = mail::from_config(&config)?;
    tracing::info!("{mail_line}");
    if !config.rate_limit_enabled {
        tracing::warn!(
            "!!! RATE LIMITS ARE OFF (LATCHKEY_RATE_LIMIT_ENABLED=false): only for load tests and benchmarks !!!"
        );
    }
    if !config.require_email_verification {
        tracing::warn!("email verification is OFF (LATCHKEY_REQUIRE_EMAIL_VERIFICATION=false)");
    }
    let reload_every = Duration::from_millis(config.keys_reload_ms);
    let keys_dir = KeyDir::new(&config.keys_dir);
    let bind = config.bind;
    let state = build_state(config).await?;
    keyring::spawn_reloader(state.keys.clone(), keys_dir, reload_every);
    store::cleanup::spawn(state.db.clone(), Duration::from_secs(state.config.cleanup_interval_secs));
    mail::worker::spawn(state.clone(), mailer);

    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("binding {bind}"))?;
    let addr = listener.local_addr().unwrap_or(bind);
    let limits = listener_limits(&state.config, state.trusted_proxies.clone());
    tracing::info!("issuer: {}", state.tokens.issuer);
    tracing::info!(
        "connections: at most {} ({} per peer address), request heads within {} s, idle ones dropped after {} s",
        limits.max_connections,
        limits.max_connections_per_ip,
        limits.header_timeout.as_secs(),
        limits.idle_timeout.as_secs()
    );
    tracing::info!("listening on http://{addr} (Swagger UI at http://{addr}/docs)");
    net::serve(listener, api::app(state), limits, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// File descriptors kept for everything but client connections: the
/// database pool, key-ring reloads, mail files, the runtime's own.
const RESERVED_DESCRIPTORS: usize = 64;

fn listener_limits(config: &Config, trusted_proxies: Vec<ipnet::IpNet>) -> net::Limits {
    let reserve = RESERVED_DESCRIPTORS + config.db_max_connections as usize;
    let max_connections = net::fit_to_file_limit(config.max_connections, reserve);
    if max_connections < config.max_connections {
        tracing::warn!(
            "LATCHKEY_MAX_CONNECTIONS={} lowered to {max_connections}: the open-file limit leaves room for no more",
            config.max_connections
        );
    }
    net::Limits {
        header_timeout: Duration::from_secs(config.header_timeout_secs),
        idle_timeout: Duration::from_secs(config.idle_timeout_secs),
        max_connections,
        max_connections_per_ip: config.max_connections_per_ip,
        trusted_proxies,
        drain: Duration::from_secs(10),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: draining in-flight requests");
}
