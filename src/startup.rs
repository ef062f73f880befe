//! Building the state and serving it.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use arc_swap::ArcSwap;

use crate::{
    AppState, Config, api,
    browser::Browser,
    clock::{Clock, SystemClock},
    config::{ConfigError, Google, Server, invalid},
    limits::{LimitSettings, Limiter},
    mail, net,
    oidc::{OidcProvider, redirect::AllowList},
    password::PasswordHasher,
    state::State,
    status_lists::StatusLists,
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

/// What is built from the configuration (rather than just parsed) before
/// anything starts; a value that cannot be built stops start-up like a
/// value that cannot be parsed, with one line naming the variable.
struct Built {
    mailer: Arc<dyn mail::Mailer>,
    mail_line: String,
    redirects: AllowList,
}

fn build(config: &Config) -> Result<Built, ConfigError> {
    let (mailer, mail_line) =
        mail::from_config(&config.mail).map_err(|e| invalid("LATCHKEY_SMTP_URL", format!("{e:#}")))?;
    Ok(Built { mailer, mail_line, redirects: allow_list(&config.server, &config.google)? })
}

/// Where a sign-in may return to: the app URL and `LATCHKEY_REDIRECT_ALLOW_LIST`
/// (and, while the app URL is the default demo, the demo under each of
/// latchkey's own origins: `localhost` as well as `127.0.0.1`).
fn allow_list(server: &Server, google: &Google) -> Result<AllowList, ConfigError> {
    let mut extra = google.redirect_allow_list.clone();
    if server.app_url.is_none() {
        for origin in server.own_origins() {
            extra.push_str(&format!(",{origin}/demo"));
        }
    }
    AllowList::new(&server.app_url(), &extra).map_err(|e| invalid("LATCHKEY_REDIRECT_ALLOW_LIST", e))
}

/// The WebAuthn relying party: `LATCHKEY_WEBAUTHN_RP_ID` (or the issuer's
/// host), for latchkey's own origins and those of `LATCHKEY_CORS_ORIGINS`
/// that are on it. `None`, with a warning, when no origin is (an issuer on
/// an IP address, say): passkeys are then off.
fn passkeys(config: &Config) -> Option<webauthn_rs::Webauthn> {
    let rp_id = config.server.webauthn_rp_id();
    let mut origins: Vec<url::Url> =
        config.server.own_origins().iter().filter_map(|o| url::Url::parse(o).ok()).collect();
    origins.extend(config.cookies.cors_origins().unwrap_or_default().iter().filter_map(|o| url::Url::parse(o).ok()));
    let on_rp = |u: &url::Url| u.domain().is_some_and(|d| d == rp_id || d.ends_with(&format!(".{rp_id}")));
    origins.retain(on_rp);
    let built = origins.split_first().and_then(|(first, rest)| {
        let builder = webauthn_rs::WebauthnBuilder::new(&rp_id, first).ok()?;
        let builder = rest.iter().fold(builder, |b, origin| b.append_allowed_origin(origin));
        builder.rp_name(&config.tokens.totp_issuer).build().ok()
    });
    match &built {
        Some(_) => {
            let list: Vec<_> = origins.iter().map(|o| o.origin().ascii_serialization()).collect();
            tracing::info!("passkeys: relying party {rp_id}, origins {}", list.join(", "));
        }
        None => tracing::warn!(
            "passkeys off: no origin of latchkey's (or of LATCHKEY_CORS_ORIGINS) is on the relying party              {rp_id:?}; set LATCHKEY_ISSUER to a URL with a domain name, or LATCHKEY_WEBAUTHN_RP_ID"
        ),
    }
    built
}

/// Loads (or, when the folder holds none, generates) the key ring, connects
/// to the database and migrates it.
async fn build_state(config: Config, redirects: AllowList, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    provider::install();
    let dir = KeyDir::new(&config.tokens.keys_dir);
    if dir.ensure(config.tokens.signing_alg, clock.now())? {
        tracing::warn!(
            "keys: generated a new {} dev key ring in {}/ (private keys mode 0600, git-ignored)",
            config.tokens.signing_alg,
            config.tokens.keys_dir.display()
        );
    }
    let ring = KeyRing::load(&dir).context("loading the key ring")?;
    tracing::info!(
        "keys: {} keys in {}/, signing with {} kid={}",
        ring.keys().len(),
        config.tokens.keys_dir.display(),
        format!("{:?}", ring.active().alg),
        ring.active().kid
    );
    let secret = dir.refresh_secret()?;
    let db = store::connect(&config.server).await?;
    if !dir.has_mfa_key() && store::mfa::any_confirmed(&db).await? {
        anyhow::bail!(
            "keys: {}/mfa.key is missing, but accounts have TOTP sealed with it: restore it from a backup \
             (a new key would open none of them, and no code of theirs would pass)",
            config.tokens.keys_dir.display()
        );
    }
    let mfa_keys = crate::mfa::keys::MfaKeys::new(&dir.mfa_key()?);
    let issuer = config.server.issuer();
    let tokens = TokenSettings {
        issuer: issuer.clone(),
        audience: config.tokens.audience.clone(),
        client_id: config.tokens.client_id.clone(),
        ttl_secs: config.tokens.access_token_ttl_secs as i64,
        leeway_secs: config.tokens.clock_leeway_secs,
    };
    let hash_concurrency = config
        .server
        .hash_concurrency
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    let trusted_proxies = config.limits.trusted_proxies().map_err(anyhow::Error::msg)?;
    let google = OidcProvider::google(&config.google, &issuer)?;
    let refresh_secret = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    let browser = Browser::new(&config.cookies, &config.server, &refresh_secret);
    let limits = Limiter::new(
        LimitSettings::from_config(&config.limits),
        crate::secret::derive_key(&refresh_secret, "latchkey rate-limit subjects v1"),
    );
    let sign_in_key = crate::secret::derive_key(&refresh_secret, "latchkey sign-in values v1");
    if !config.cookies.cookie_secure {
        tracing::warn!(
            "LATCHKEY_COOKIE_SECURE=false: session cookies go without Secure and without the __Host- prefix, \
             so a sibling subdomain could plant its own; use this only for http:// development on one host"
        );
    }
    if google.is_some() {
        let callback = config.google.redirect_uri(&issuer);
        tracing::info!("sign in with Google: issuer {}, callback {callback}", config.google.google_issuer);
    }
    let webauthn = passkeys(&config);
    let status_lists = StatusLists::new(issuer, config.tokens.status_list_ttl_secs);
    let metrics = config.server.metrics_enabled.then(crate::observe::metrics::install);
    Ok(AppState::new(State {
        status_lists,
        config,
        db,
        keys: Arc::new(ArcSwap::from_pointee(ring)),
        tokens,
        refresh_secret,
        mfa_keys,
        webauthn,
        hasher: PasswordHasher::new(hash_concurrency),
        verified: VerifiedTokens::new(4096),
        mail_queue: Arc::new(tokio::sync::Notify::new()),
        limits,
        sign_in_key,
        trusted_proxies,
        google,
        browser: Arc::new(browser),
        redirects,
        clock,
        metrics,
    }))
}

/// Serves until SIGINT or SIGTERM, then drains in-flight requests.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let running = start(config, Arc::new(SystemClock)).await?;
    shutdown_signal().await;
    running.stop().await
}

/// A server started by `start`, serving until `stop`.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, drains in-flight requests (10 s at most) and ends
    /// the background tasks.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let served = self.serving.await;
        for task in &self.background {
            task.abort();
        }
        served??;
        tracing::info!("stopped");
        Ok(())
    }

    /// Ends it at once: no drain (a test that is done with it).
    pub fn abort(self) {
        self.serving.abort();
        for task in &self.background {
            task.abort();
        }
    }
}

/// Builds everything from `config`, with time from `clock`, starts the
/// background tasks (key-ring reload, cleanup, mail) and the listener. The
/// binary runs it with the system clock; tests that need time to pass run it
/// in their own process with a clock they move.
pub async fn start(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Running> {
    tracing::info!("latchkey {} starting", env!("CARGO_PKG_VERSION"));
    match store::sqlite_path(config.server.database_url.expose()) {
        Some(path) => tracing::info!(
            "database: SQLite file {} (set LATCHKEY_DATABASE_URL=postgres://… for Postgres)",
            path.display()
        ),
        None if config.server.database_prepared_statements => tracing::info!(
            "database: {} (prepared statements on: each connection keeps its parsed statements; \
             behind a pooler in transaction mode set LATCHKEY_DATABASE_PREPARED_STATEMENTS=false)",
            config.server.redacted_database_url()
        ),
        None => tracing::info!(
            "database: {} (prepared statements off: every statement runs in a transaction and \
             none outlives it, for a pooler in transaction mode)",
            config.server.redacted_database_url()
        ),
    }
    let Built { mailer, mail_line, redirects } = build(&config)?;
    tracing::info!("{mail_line}");
    if !config.limits.rate_limit_enabled {
        tracing::warn!(
            "!!! RATE LIMITS ARE OFF (LATCHKEY_RATE_LIMIT_ENABLED=false): only for load tests and benchmarks !!!"
        );
    }
    if !config.server.require_email_verification {
        tracing::warn!("email verification is OFF (LATCHKEY_REQUIRE_EMAIL_VERIFICATION=false)");
    }
    let reload_every = Duration::from_millis(config.tokens.keys_reload_ms);
    let keys_dir = KeyDir::new(&config.tokens.keys_dir);
    let bind = config.server.bind;
    let state = build_state(config, redirects, clock).await?;
    let cleanup_every = Duration::from_secs(state.config.server.cleanup_interval_secs);
    let background = vec![
        keyring::spawn_reloader(state.keys.clone(), keys_dir, reload_every),
        store::cleanup::spawn(state.db.clone(), state.clock.clone(), cleanup_every, retire_after(&state.config)),
        mail::worker::spawn(state.clone(), mailer),
        spawn_status_lists(state.clone()),
    ];

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
    let mut background = background;
    if let Some(handle) = state.metrics.clone() {
        background.push(spawn_metrics_upkeep(handle));
    }
    match (&state.metrics, state.config.server.metrics_bind) {
        (None, _) => tracing::info!("metrics: off (LATCHKEY_METRICS_ENABLED=false)"),
        (Some(_), None) => tracing::info!("metrics: http://{addr}/metrics (set LATCHKEY_METRICS_BIND to move them)"),
        (Some(_), Some(metrics_bind)) => {
            let listener = tokio::net::TcpListener::bind(metrics_bind)
                .await
                .with_context(|| format!("binding {metrics_bind} (LATCHKEY_METRICS_BIND)"))?;
            let metrics_addr = listener.local_addr().unwrap_or(metrics_bind);
            tracing::info!("metrics: http://{metrics_addr}/metrics only (not on the main listener)");
            let app = api::metrics_app(state.clone());
            background.push(tokio::spawn(async move {
                let acceptor = poem::listener::TcpAcceptor::from_tokio(listener);
                match acceptor {
                    Ok(acceptor) => {
                        if let Err(e) = poem::Server::new_with_acceptor(acceptor).run(app).await {
                            tracing::error!(error = %e, "metrics listener stopped");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "metrics listener"),
                }
            }));
        }
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = api::app(state);
    let serving = tokio::spawn(async move {
        net::serve(listener, app, limits, async {
            let _ = stopped.await;
        })
        .await
    });
    Ok(Running { addr, stop, serving, background })
}

/// Folds recorded histogram samples into their buckets every few seconds:
/// without it they pile up in memory until someone scrapes `/metrics`.
fn spawn_metrics_upkeep(handle: metrics_exporter_prometheus::PrometheusHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            handle.run_upkeep();
        }
    })
}

/// A status list is retired this long after it closed: every session that
/// took a slot of it has passed its cap, and its last access token expired.
fn retire_after(config: &Config) -> chrono::Duration {
    let t = &config.tokens;
    chrono::Duration::seconds((t.session_max_age_secs + t.access_token_ttl_secs + t.clock_leeway_secs) as i64)
}

/// Keeps this instance's status lists in step with the database, every second.
fn spawn_status_lists(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = state.status_lists.refresh(&state.db, &state.keys.load(), state.clock.now()).await {
                tracing::warn!(error = format!("{e:#}"), "status lists: cannot refresh; serving the last built");
            }
        }
    })
}

/// File descriptors kept for everything but client connections: the
/// database pool, key-ring reloads, mail files, the runtime's own.
const RESERVED_DESCRIPTORS: usize = 64;

fn listener_limits(config: &Config, trusted_proxies: Vec<ipnet::IpNet>) -> net::Limits {
    let reserve = RESERVED_DESCRIPTORS + config.server.db_max_connections as usize;
    let max_connections = net::fit_to_file_limit(config.limits.max_connections, reserve);
    if max_connections < config.limits.max_connections {
        tracing::warn!(
            "LATCHKEY_MAX_CONNECTIONS={} lowered to {max_connections}: the open-file limit leaves room for no more",
            config.limits.max_connections
        );
    }
    net::Limits {
        header_timeout: Duration::from_secs(config.limits.header_timeout_secs),
        idle_timeout: Duration::from_secs(config.limits.idle_timeout_secs),
        max_connections,
        max_connections_per_ip: config.limits.max_connections_per_ip,
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
