//! The attacks of the security review (README "Abuse resistance" and
//! "Choices"), each made the way an outsider would make it — bursts
//! released together at a barrier, each request on its own connection, real
//! slow sockets — and each shown to fail now.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    helpers::{Backend, Options, PASSWORD, TestApp, assert_problem, burst, count, response_shape as shape, spawn_with},
    on_both_backends,
};

const WRONG: &str = "Wrong7Tortoise";

fn address() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Behind a trusted proxy, each request can come from its own client IP, so
/// the per-IP budget is no help to the defence: only the per-account limit is.
fn from_many_ips() -> Options {
    Options::default()
        .env("LATCHKEY_TRUSTED_PROXIES", "127.0.0.1")
        .env("LATCHKEY_LOG", "info,sqlx=warn,latchkey::hashing=debug")
}

fn login_request(
    client: &reqwest::Client,
    base: &str,
    ip: String,
    email: &str,
    password: &str,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/v1/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "email": email, "password": password }))
}

/// 40 guesses at once, each from its own IP and connection, over `apps`
/// (instances sharing one database): at most the limit's five passwords are
/// checked, and afterwards even the right password waits.
async fn guesses_in_a_burst_get_five_checks(apps: &[&TestApp]) {
    let email = address();
    assert_eq!(apps[0].signup(&email, PASSWORD).await.status(), 202);
    let bases: Vec<String> = apps.iter().map(|a| a.base.clone()).collect();
    let statuses = {
        let email = email.clone();
        burst(40, &bases[0].clone(), move |i, client| {
            let (base, email) = (bases[i % bases.len()].clone(), email.clone());
            async move { login_request(&client, &base, format!("198.51.100.{i}"), &email, WRONG).send().await.unwrap() }
        })
        .await
    };
    assert_eq!(count(&statuses, 401), 5, "passwords checked: {statuses:?}");
    assert_eq!(count(&statuses, 429), 35, "{statuses:?}");
    let right = login_request(&apps[0].client, &apps[0].base, "203.0.113.9".into(), &email, PASSWORD).send().await;
    assert_problem(right.unwrap(), 429, "rate_limited").await;
    let hashed: usize = apps.iter().map(|app| passwords_checked(app)).sum();
    assert_eq!(hashed, 5, "passwords hashed and compared by the servers");
}

/// How many passwords the server has checked (it logs a line for each at
/// `latchkey::hashing=debug`), so an attack can count the work it caused.
fn passwords_checked(app: &TestApp) -> usize {
    app.logs().iter().filter(|line| line.contains("checking a password")).count()
}

async fn a_login_burst_cannot_beat_the_per_account_limit(backend: Backend) {
    let app = spawn_with(Options { backend, ..from_many_ips() }).await;
    guesses_in_a_burst_get_five_checks(&[&app]).await;
}

on_both_backends!(a_login_burst_cannot_beat_the_per_account_limit);

#[tokio::test]
async fn a_login_burst_over_two_instances_cannot_beat_the_per_account_limit() {
    let a = spawn_with(from_many_ips()).await;
    let b = a.spawn_second().await;
    guesses_in_a_burst_get_five_checks(&[&a, &b]).await;
}

/// A server with verification on and mail to a real SMTP server; links point to `http://app.test`.
async fn with_mail(options: Options) -> (TestApp, crate::smtp::SmtpServer) {
    let smtp = crate::smtp::SmtpServer::start().await;
    let options = options
        .env("LATCHKEY_REQUIRE_EMAIL_VERIFICATION", "true")
        .env("LATCHKEY_SMTP_URL", smtp.url())
        .env("LATCHKEY_APP_URL", "http://app.test");
    (spawn_with(options).await, smtp)
}

/// A signed-in user's bearer token and the endpoints that check its password.
struct Victim {
    email: String,
    access: String,
}

async fn victim(app: &TestApp) -> Victim {
    let email = address();
    let tokens = app.new_session_for(&email).await;
    Victim { email, access: tokens["access_token"].as_str().unwrap().into() }
}

fn change_request(client: &reqwest::Client, base: &str, v_access: &str, current: &str) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/v1/auth/password/change"))
        .bearer_auth(v_access)
        .json(&json!({ "current_password": current, "new_password": "Brand9NewSecret" }))
}

fn delete_request(client: &reqwest::Client, base: &str, v_access: &str, password: &str) -> reqwest::RequestBuilder {
    client.delete(format!("{base}/v1/users/me")).bearer_auth(v_access).json(&json!({ "password": password }))
}

#[tokio::test]
async fn a_stolen_access_token_is_not_a_password_oracle() {
    let app = spawn_with(Options::default().env("LATCHKEY_LOG", "info,sqlx=warn,latchkey::hashing=debug")).await;
    for endpoint in ["change", "delete"] {
        let v = victim(&app).await;
        let checked_before = passwords_checked(&app);
        let (access, base) = (v.access.clone(), app.base.clone());
        let statuses = burst(30, &app.base, move |_, client| {
            let (access, base) = (access.clone(), base.clone());
            async move {
                let request = match endpoint {
                    "change" => change_request(&client, &base, &access, WRONG),
                    _ => delete_request(&client, &base, &access, WRONG),
                };
                request.send().await.unwrap()
            }
        })
        .await;
        assert_eq!(count(&statuses, 403), 5, "{endpoint}: passwords checked: {statuses:?}");
        assert_eq!(count(&statuses, 429), 25, "{endpoint}: {statuses:?}");
        assert_eq!(passwords_checked(&app) - checked_before, 5, "{endpoint}: passwords hashed by the server");
        // The guesses counted toward the login limit: the right password waits too,
        assert_problem(app.login(&v.email, PASSWORD).await, 429, "rate_limited").await;
        // and so does the endpoint itself with the right password.
        let right = match endpoint {
            "change" => change_request(&app.client, &app.base, &v.access, PASSWORD),
            _ => delete_request(&app.client, &app.base, &v.access, PASSWORD),
        };
        assert_problem(right.send().await.unwrap(), 429, "rate_limited").await;
    }
}

#[tokio::test]
async fn every_endpoint_that_checks_a_password_draws_on_one_budget() {
    let (app, smtp) = with_mail(Options::default()).await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    let token = smtp.nth(&email, 1).await.token("http://app.test/verify-email?token=");
    // A wrong password at verification counts (and leaves the link usable) …
    let resp = app.post("/v1/auth/verify-email", json!({ "token": token, "password": WRONG })).await;
    assert_problem(resp, 403, "invalid_current_password").await;
    let resp = app.post("/v1/auth/verify-email", json!({ "token": token, "password": PASSWORD })).await;
    assert_eq!(resp.status(), 200);
    // … a right one clears the count, as a successful login does.
    let tokens: Value = app.login(&email, PASSWORD).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.login(&email, WRONG).await.status(), 401);
    let change = change_request(&app.client, &app.base, access, WRONG).send().await.unwrap();
    assert_problem(change, 403, "invalid_current_password").await;
    let delete = delete_request(&app.client, &app.base, access, WRONG).send().await.unwrap();
    assert_problem(delete, 403, "invalid_current_password").await;
    assert_eq!(app.login(&email, WRONG).await.status(), 401);
    let change = change_request(&app.client, &app.base, access, WRONG).send().await.unwrap();
    assert_problem(change, 403, "invalid_current_password").await;
    // Five checks through three endpoints: the sixth waits, wherever it is made.
    assert_problem(app.login(&email, PASSWORD).await, 429, "rate_limited").await;
}

/// Every limit is decided by one statement: a burst gets exactly its number.
#[tokio::test]
async fn no_burst_gets_more_than_any_limits_number() {
    let app = spawn_with(
        from_many_ips()
            .env("LATCHKEY_RATE_LIMIT_SIGNUP_PER_IP", 3)
            .env("LATCHKEY_RATE_LIMIT_SIGNUP_PER_ADDRESS", 3)
            .env("LATCHKEY_RATE_LIMIT_MAIL_PER_ADDRESS", 3)
            .env("LATCHKEY_RATE_LIMIT_REFRESH_PER_SESSION", 3),
    )
    .await;
    let base = app.base.clone();
    let post = move |path: &'static str, ip: Option<String>, body: Value| {
        let base = base.clone();
        move |client: reqwest::Client| {
            let mut request = client.post(format!("{base}{path}")).json(&body);
            if let Some(ip) = ip {
                request = request.header("x-forwarded-for", ip);
            }
            async move { request.send().await.unwrap() }
        }
    };
    // Sign-ups per IP: 20 new addresses from one IP.
    let statuses = burst(20, &app.base, {
        let post = post.clone();
        move |_, client| {
            post("/v1/auth/signup", Some("192.0.2.1".into()), json!({ "email": address(), "password": PASSWORD }))(
                client,
            )
        }
    })
    .await;
    assert_eq!((count(&statuses, 202), count(&statuses, 429)), (3, 17), "signup per IP: {statuses:?}");
    // Sign-ups per address: one address from 20 IPs.
    let email = address();
    let statuses = burst(20, &app.base, {
        let (post, email) = (post.clone(), email.clone());
        move |i, client| {
            post(
                "/v1/auth/signup",
                Some(format!("192.0.2.{}", 10 + i)),
                json!({ "email": email, "password": PASSWORD }),
            )(client)
        }
    })
    .await;
    assert_eq!((count(&statuses, 202), count(&statuses, 429)), (3, 17), "signup per address: {statuses:?}");
    // Resend and forgot per address, from 20 IPs.
    for path in ["/v1/auth/verify-email/resend", "/v1/auth/password/forgot"] {
        let email = address();
        let statuses = burst(20, &app.base, {
            let (post, email) = (post.clone(), email.clone());
            move |i, client| post(path, Some(format!("192.0.2.{}", 40 + i)), json!({ "email": email }))(client)
        })
        .await;
        assert_eq!((count(&statuses, 202), count(&statuses, 429)), (3, 17), "{path}: {statuses:?}");
    }
    // The refresh budget of one session.
    let tokens = app.new_session().await;
    let token = tokens["refresh_token"].as_str().unwrap().to_string();
    let statuses = burst(20, &app.base, {
        let post = post.clone();
        move |_, client| post("/v1/auth/refresh", None, json!({ "refresh_token": token }))(client)
    })
    .await;
    assert_eq!(count(&statuses, 429), 17, "refresh per session: {statuses:?}");
    assert_eq!(count(&statuses, 200), 3, "the first is a rotation, the others retries of it: {statuses:?}");
}

#[tokio::test]
async fn a_burst_of_google_sign_in_starts_gets_the_per_ip_number() {
    // A provider that cannot be reached: every start that gets through is
    // sent straight back to the app, and each one counts.
    let app = spawn_with(
        Options::default()
            .env("LATCHKEY_GOOGLE_CLIENT_ID", "client")
            .env("LATCHKEY_GOOGLE_CLIENT_SECRET", "secret")
            .env("LATCHKEY_GOOGLE_ISSUER", format!("http://127.0.0.1:{}", crate::smtp::free_port()))
            .env("LATCHKEY_RATE_LIMIT_LOGIN_PER_IP", 4),
    )
    .await;
    let base = app.base.clone();
    let statuses = burst(20, &app.base, move |_, client| {
        let url = format!("{base}/v1/auth/oauth/google/authorize");
        async move { client.get(url).send().await.unwrap() }
    })
    .await;
    assert_eq!((count(&statuses, 302), count(&statuses, 429)), (4, 16), "{statuses:?}");
}

// ---- slow and many ----

/// Opens a connection from `source` (any 127.0.0.0/8 address: each is its own peer).
async fn connect_from(app: &TestApp, source: &str) -> tokio::net::TcpStream {
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Writes `head` a byte at a time, one every `every`, until the server
/// closes the connection; returns how long that took (`None`: it never did).
async fn trickle(mut stream: tokio::net::TcpStream, head: &[u8], every: Duration) -> Option<Duration> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    for byte in head.iter().cycle().take(10_000) {
        if stream.write_all(&[*byte]).await.is_err() {
            return Some(started.elapsed());
        }
        match tokio::time::timeout(every, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => return Some(started.elapsed()), // an answer: the connection is done with
            Err(_) => {}
        }
        if started.elapsed() > Duration::from_secs(30) {
            return None;
        }
    }
    None
}

#[tokio::test]
async fn a_request_head_trickled_byte_by_byte_is_cut_off_at_its_deadline() {
    // The idle timeout is far away: only the total deadline on the head can end these.
    let app =
        spawn_with(Options::default().env("LATCHKEY_HEADER_TIMEOUT_SECS", 2).env("LATCHKEY_IDLE_TIMEOUT_SECS", 60))
            .await;
    let head =
        b"GET /healthz HTTP/1.1\r\nHost: latchkey\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let streams: Vec<_> = futures::future::join_all((0..20).map(|_| connect_from(&app, "127.0.0.1"))).await;
    let closed =
        futures::future::join_all(streams.into_iter().map(|s| trickle(s, head, Duration::from_millis(300)))).await;
    for after in closed {
        let after = after.expect("a trickling connection was never closed");
        assert!(after >= Duration::from_millis(1500) && after < Duration::from_secs(8), "closed after {after:?}");
    }
    // A connection that sends nothing is closed by the same deadline.
    let mut idle = connect_from(&app, "127.0.0.1").await;
    let started = std::time::Instant::now();
    let read =
        tokio::time::timeout(Duration::from_secs(10), tokio::io::AsyncReadExt::read(&mut idle, &mut [0u8; 16])).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    assert!(started.elapsed() < Duration::from_secs(8), "silent connection closed after {:?}", started.elapsed());
    // An honest client is not affected.
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_body_trickled_byte_by_byte_is_cut_off_too() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_with(Options::default().env("LATCHKEY_IDLE_TIMEOUT_SECS", 60)).await;
    let mut stream = connect_from(&app, "127.0.0.1").await;
    let head = "POST /v1/auth/login HTTP/1.1\r\nHost: latchkey\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    while started.elapsed() < Duration::from_secs(20) {
        let _ = stream.write_all(b" ").await;
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "after {:?}: {answer:?}", started.elapsed());
    assert!(answer.contains("request_timeout"), "{answer}");
}

#[tokio::test]
async fn one_peer_cannot_take_every_connection() {
    let app = spawn_with(Options::default().env("LATCHKEY_MAX_CONNECTIONS_PER_IP", 10)).await;
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(connect_from(&app, "127.0.0.2").await);
    }
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The eleventh from that peer is closed at once, before it sends anything …
    let over = connect_from(&app, "127.0.0.2").await;
    let after = trickle(over, b"GET /healthz HTTP/1.1\r\n", Duration::from_millis(200)).await;
    assert!(after.is_some_and(|d| d < Duration::from_secs(2)), "the 11th connection closed after {after:?}");
    // … while everyone else is served.
    let resp = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    drop(held);
}

#[tokio::test]
async fn hundreds_of_slow_connections_under_a_low_file_limit_leave_the_service_working() {
    // 300 slow connections from six peers against a process allowed 200 files.
    let app = spawn_with(
        Options::default()
            .open_files(200)
            .env("LATCHKEY_MAX_CONNECTIONS_PER_IP", 50)
            .env("LATCHKEY_HEADER_TIMEOUT_SECS", 4),
    )
    .await;
    app.wait_for_log("LATCHKEY_MAX_CONNECTIONS=1024 lowered to").await;
    let mut attackers = Vec::new();
    for peer in 2..8 {
        for _ in 0..50 {
            let stream = connect_from(&app, &format!("127.0.0.{peer}")).await;
            attackers.push(tokio::spawn(trickle(stream, b"GET / HTTP/1.1\r\nX-A: b", Duration::from_millis(500))));
        }
    }
    // Meanwhile, on new connections (as a load balancer's checks come):
    // health checks answer, and a rotated key ring is picked up.
    let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let get = |path: &str| {
        let request = fresh.get(app.url(path)).send();
        async move { tokio::time::timeout(Duration::from_secs(3), request).await.expect("answered in time").unwrap() }
    };
    let keys = |set: Value| set["keys"].as_array().unwrap().len();
    let before = keys(get("/.well-known/jwks.json").await.json().await.unwrap());
    let out = app.cli(&["keys", "rotate"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut rotated = false;
    for _ in 0..20 {
        assert_eq!(get("/healthz").await.status(), 200);
        if keys(get("/.well-known/jwks.json").await.json().await.unwrap()) == before + 1 {
            rotated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(rotated, "the rotated key ring was never served");
    for attacker in attackers {
        assert!(attacker.await.unwrap().is_some(), "every slow connection was closed");
    }
    let logs = app.logs();
    assert!(!logs.iter().any(|l| l.contains("Too many open files")), "the process ran out of files");
}

// ---- enumeration ----

/// Signs up `email` with `password` as an attacker would, then logs in with it.
async fn sign_up_then_log_in(app: &TestApp, email: &str, password: &str) -> (u16, Vec<(String, String)>, bytes::Bytes) {
    assert_eq!(app.signup(email, password).await.status(), 202);
    shape(app.login(email, password).await).await
}

async fn sign_up_then_log_in_tells_nothing(backend: Backend) {
    let app = spawn_with(Options::backend(backend).env("LATCHKEY_REQUIRE_EMAIL_VERIFICATION", "true")).await;
    // The owner of a taken address, verified long ago.
    let taken = address();
    assert_eq!(app.signup(&taken, PASSWORD).await.status(), 202);
    app.verify_by_hand(&taken).await;
    let free = address();

    let on_taken = sign_up_then_log_in(&app, &taken, "Attacker1Choice").await;
    let on_free = sign_up_then_log_in(&app, &free, "Attacker1Choice").await;
    assert_eq!(on_taken, on_free);
    assert_eq!(on_taken.0, 403, "{:?}", on_taken.2);
    // A second sign-up with another password, and the first one again.
    assert_eq!(
        sign_up_then_log_in(&app, &taken, "Attacker2Choice").await,
        sign_up_then_log_in(&app, &free, "Attacker2Choice").await
    );
    assert_eq!(
        shape(app.login(&taken, "Attacker1Choice").await).await,
        shape(app.login(&free, "Attacker1Choice").await).await
    );
    // Any other password fails alike.
    assert_eq!(
        shape(app.login(&taken, "Unknown3Guess").await).await,
        shape(app.login(&free, "Unknown3Guess").await).await
    );
    // The owner's own password still works, and the attempts changed nothing.
    assert_eq!(app.login(&taken, PASSWORD).await.status(), 200);
}
on_both_backends!(sign_up_then_log_in_tells_nothing);

#[tokio::test]
async fn the_owner_changing_their_password_does_not_tell_either() {
    let app = spawn_with(Options::default().env("LATCHKEY_REQUIRE_EMAIL_VERIFICATION", "true")).await;
    let taken = address();
    assert_eq!(app.signup(&taken, PASSWORD).await.status(), 202);
    app.verify_by_hand(&taken).await;
    assert_eq!(app.signup(&taken, "Attacker1Choice").await.status(), 202);
    // The owner changes their password after the attempt (a new hash) …
    let tokens: Value = app.login(&taken, PASSWORD).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let changed = app
        .client
        .post(app.url("/v1/auth/password/change"))
        .bearer_auth(access)
        .json(&json!({ "current_password": PASSWORD, "new_password": "Owner2NewSecret" }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    // … and the attacker's password still answers as for a new account.
    assert_problem(app.login(&taken, "Attacker1Choice").await, 403, "email_not_verified").await;
    assert_eq!(app.login(&taken, "Owner2NewSecret").await.status(), 200);
    // One salt for the account's hash and every attempt: one argon2 computation per login.
    let salts = app.sql(
        "SELECT count(DISTINCT split_part(h, '$', 5)) FROM (SELECT password_hash h FROM users WHERE password_hash IS NOT NULL \
         UNION ALL SELECT password_hash FROM signup_attempts) s",
    );
    assert_eq!(salts, "1");
}

// ---- pre-account hijack and attacker text in mail ----

#[tokio::test]
async fn a_squatters_password_and_text_never_reach_the_owner() {
    let (app, smtp) = with_mail(Options::default()).await;
    let owner = address();
    let lure = "your account is locked: go to https://evil.example/unlock now";
    let signup =
        app.post("/v1/auth/signup", json!({ "email": owner, "password": "Squatter1Choice", "name": lure })).await;
    assert_eq!(signup.status(), 202);
    // The mail to the address carries nothing its sender chose.
    let mail = smtp.nth(&owner, 1).await;
    for part in [&mail.text, &mail.html, &mail.to, &mail.subject] {
        assert!(!part.contains("evil.example") && !part.contains("locked"), "{part}");
    }
    assert!(mail.text.starts_with("Hello,"), "{}", mail.text);

    // The owner clicks the link; they do not know the squatter's password.
    let token = mail.token("http://app.test/verify-email?token=");
    let resp = app.post("/v1/auth/verify-email", json!({ "token": token })).await;
    assert_eq!(resp.status(), 200);
    let verified: Value = resp.json().await.unwrap();
    assert_eq!(verified["password_removed"], true);
    // The squatter's password never comes to life.
    assert_problem(app.login(&owner, "Squatter1Choice").await, 401, "invalid_credentials").await;
    assert_eq!(
        app.sql(&format!("SELECT name IS NULL AND password_hash IS NULL FROM users WHERE email_key = '{owner}'")),
        "t"
    );
    // The owner is sent a link to choose their own.
    let choose = smtp.nth(&owner, 2).await;
    assert_eq!(choose.subject, "Choose a password for your account");
    assert!(!choose.text.contains("evil.example"), "{}", choose.text);
    let reset = choose.token("http://app.test/reset-password?token=");
    let resp = app.post("/v1/auth/password/reset", json!({ "token": reset, "new_password": "Owner9Chosen" })).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(app.login(&owner, "Owner9Chosen").await.status(), 200);
}

#[tokio::test]
async fn whoever_signed_up_keeps_their_password_by_confirming_it() {
    let (app, smtp) = with_mail(Options::default()).await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    let token = smtp.nth(&email, 1).await.token("http://app.test/verify-email?token=");
    let wrong = app.post("/v1/auth/verify-email", json!({ "token": token, "password": WRONG })).await;
    assert_problem(wrong, 403, "invalid_current_password").await;
    let resp = app.post("/v1/auth/verify-email", json!({ "token": token, "password": PASSWORD })).await;
    let verified: Value = resp.json().await.unwrap();
    assert_eq!(verified["password_removed"], false);
    assert_eq!(app.login(&email, PASSWORD).await.status(), 200);
}

// ---- markup, look-alike addresses, notices ----

#[tokio::test]
async fn encoded_markup_is_not_stored() {
    let app = spawn_with(Options::default()).await;
    let tokens = app.new_session().await;
    let access = tokens["access_token"].as_str().unwrap();
    for payload in [
        "&lt;img src=x onerror=alert(1)&gt;",
        "&#60;script&#62;alert(1)&#60;/script&#62;",
        "<scr<script>ipt>alert(1)</scr</script>ipt>",
        "&amp;lt;svg onload=alert(1)&amp;gt;",
    ] {
        let body = json!({ "robotics_experience": "none", "ai_ml_experience": "none", "learning_goals": payload });
        let resp =
            app.client.put(app.url("/v1/users/me/profile")).bearer_auth(access).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let stored: Value = resp.json().await.unwrap();
        let text = stored["learning_goals"].as_str().unwrap();
        assert!(
            !text.contains('<') && !text.contains("&lt;") && !text.contains("&#"),
            "{payload:?} stored as {text:?}"
        );
    }
}

#[tokio::test]
async fn look_alike_addresses_do_not_reach_an_account() {
    let app = spawn_with(Options::default()).await;
    assert_eq!(app.signup("kate@example.com", PASSWORD).await.status(), 202);
    for look_alike in ["\u{212a}ate@example.com", "\u{ff4b}ate@example.com", "kat\u{0435}@example.com"] {
        assert_problem(app.login(look_alike, PASSWORD).await, 401, "invalid_credentials").await;
        let body = assert_problem(app.signup(look_alike, PASSWORD).await, 422, "invalid_email").await;
        assert_eq!(body["errors"][0]["rule"], "invalid_characters");
        let forgot = app.post("/v1/auth/password/forgot", json!({ "email": look_alike })).await;
        assert_problem(forgot, 422, "invalid_email").await;
    }
    // Case is not identity: the same account in any case.
    assert_eq!(app.login("KATE@EXAMPLE.COM", PASSWORD).await.status(), 200);
    assert_eq!(app.signup("Kate@Example.com", PASSWORD).await.status(), 202);
    assert_eq!(app.sql("SELECT count(*) FROM users"), "1");
}

#[tokio::test]
async fn sign_up_notices_to_one_address_are_capped_whatever_the_source() {
    let (app, smtp) = with_mail(from_many_ips().env("LATCHKEY_RATE_LIMIT_SIGNUP_PER_ADDRESS", 3)).await;
    let (taken, free) = (address(), address());
    assert_eq!(app.signup(&taken, PASSWORD).await.status(), 202);
    let token = smtp.nth(&taken, 1).await.token("http://app.test/verify-email?token=");
    let verified = app.post("/v1/auth/verify-email", json!({ "token": token, "password": PASSWORD })).await;
    assert_eq!(verified.status(), 200);
    // The owner's own sign-up was the first of three.
    let mut answers = Vec::new();
    for (i, email) in [&taken, &free].into_iter().enumerate() {
        let mut statuses = Vec::new();
        for n in 0..9 {
            let resp = app
                .client
                .post(app.url("/v1/auth/signup"))
                .header("x-forwarded-for", format!("192.0.2.{}", i * 10 + n))
                .json(&json!({ "email": email, "password": format!("Quixotic{n}Zephyr{}", i * 10 + n) }))
                .send()
                .await
                .unwrap();
            statuses.push(resp.status().as_u16());
        }
        answers.push(statuses);
    }
    assert_eq!(answers[0], [202, 202, 429, 429, 429, 429, 429, 429, 429]);
    assert_eq!(answers[1], [202, 202, 202, 429, 429, 429, 429, 429, 429]);
    // The owner got one verification mail and two notices, nothing more.
    let mails = smtp.wait_for(&taken, 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received_by(&taken).len(), 3, "{:?}", mails.iter().map(|m| &m.subject).collect::<Vec<_>>());
}

// ---- at rest ----

#[tokio::test]
async fn the_default_database_and_mail_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    // The README's configuration: SQLite under data/, mail as files.
    let app = spawn_with(
        Options::backend(Backend::Sqlite)
            .env("LATCHKEY_DATABASE_URL", "sqlite://data/latchkey.db?mode=rwc")
            .env("LATCHKEY_REQUIRE_EMAIL_VERIFICATION", "true"),
    )
    .await;
    assert_eq!(app.signup(&address(), PASSWORD).await.status(), 202);
    app.wait_for_log("mail: Verify your email address").await;
    let data = app.work_dir().join("data");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "data/");
    assert_eq!(mode(&data.join("mail")), 0o700, "data/mail/");
    for name in ["latchkey.db", "latchkey.db-wal", "latchkey.db-shm"] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    let mails: Vec<_> = std::fs::read_dir(data.join("mail")).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!mails.is_empty());
    for mail in mails {
        assert_eq!(mode(&mail), 0o600, "{}", mail.display());
    }
}

#[tokio::test]
async fn rate_limit_rows_name_no_address_and_no_ip() {
    let app = spawn_with(Options::default()).await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    assert_eq!(app.login(&email, WRONG).await.status(), 401);
    let keys = app.sql("SELECT string_agg(key, ' ') FROM rate_limits");
    assert!(keys.contains("login-account:") && keys.contains("login-ip:"), "{keys}");
    for subject in [email.as_str(), "127.0.0.1"] {
        let plain = app.sql(&format!("SELECT encode(sha256('{subject}'::bytea), 'hex')"));
        assert!(!keys.contains(&plain[..40]), "{subject} is recognisable in {keys}");
        assert!(!keys.contains(subject), "{keys}");
    }
}

// ---- headers and token parsing ----

#[tokio::test]
async fn every_answer_forbids_sniffing_and_framing_and_personal_ones_caching() {
    let app = spawn_with(Options::default()).await;
    let tokens = app.new_session().await;
    let access = tokens["access_token"].as_str().unwrap();
    let get = |path: &str, auth: bool| {
        let request = app.client.get(app.url(path));
        if auth { request.bearer_auth(access) } else { request }
    };
    for path in ["/docs/", "/openapi.json", "/.well-known/jwks.json", "/healthz", "/v1/users/me"] {
        let resp = get(path, true).send().await.unwrap();
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(resp.headers()["x-frame-options"], "DENY", "{path}");
    }
    let docs = get("/docs/", false).send().await.unwrap();
    assert!(docs.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    for path in ["/v1/users/me", "/v1/sessions", "/v1/users/me/events", "/v1/users/me/profile"] {
        let resp = get(path, true).send().await.unwrap();
        assert_eq!(resp.headers()["cache-control"], "no-store", "{path}");
    }
    let jwks = get("/.well-known/jwks.json", false).send().await.unwrap();
    assert!(jwks.headers()["cache-control"].to_str().unwrap().contains("max-age"), "public keys stay cacheable");
}

#[tokio::test]
async fn a_token_with_a_critical_header_parameter_is_refused() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, decode_header, encode};
    let app = spawn_with(Options::default()).await;
    let tokens = app.new_session().await;
    let real = tokens["access_token"].as_str().unwrap();
    let kid = decode_header(real).unwrap().kid.unwrap();
    let claims: Value = {
        use base64::Engine;
        let payload = real.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    let key = EncodingKey::from_ec_pem(&app.private_key_pem(&kid)).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid);
    header.crit = Some(vec!["exp".into()]);
    let forged = encode(&header, &claims, &key).unwrap();
    assert_problem(app.me(&forged).await, 401, "invalid_token").await;
    assert_eq!(app.me(real).await.status(), 200, "the same claims without crit pass");
}

#[tokio::test]
async fn errors_never_echo_a_value_that_may_be_a_secret() {
    let app = spawn_with(Options::default()).await;
    let secret = "lk_rt_ThisIsWhatALeakedRefreshTokenLooksLike0123456";
    for body in [
        json!({ "refresh_token": [secret] }),
        json!({ "refresh_token": { "token": secret } }),
        json!({ "email": "a@example.com", "password": [secret] }),
    ] {
        let path = if body.get("email").is_some() { "/v1/auth/login" } else { "/v1/auth/refresh" };
        let resp = app.post(path, body).await;
        let text = resp.text().await.unwrap();
        assert!(text.contains("malformed_request"), "{text}");
        assert!(!text.contains(secret) && !text.contains("ThisIsWhat"), "{text}");
    }
}
