//! Managed Postgres paths (README "Managed Postgres and poolers"): PgBouncer
//! in transaction mode with `LATCHKEY_DATABASE_PREPARED_STATEMENTS=false`,
//! and TLS to the database (`sslmode=require`, `verify-full` with a CA file).

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::{
    helpers::{Options, PASSWORD, TestApp, assert_problem, burst_with, spawn_with},
    pg::{Bouncer, Certs, Cluster},
};

fn rt(tokens: &Value) -> String {
    tokens["refresh_token"].as_str().expect("refresh_token").to_string()
}

/// Signup, login, `/me`, refresh, password change, the session list and logout.
async fn core_journey(app: &TestApp, email: &str) {
    assert_eq!(app.signup(email, PASSWORD).await.status(), 202);
    let login = app.login(email, PASSWORD).await;
    assert_eq!(login.status(), 200);
    let tokens: Value = login.json().await.unwrap();
    let me = app.me(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<Value>().await.unwrap()["email"], email);
    let refreshed = app.refresh(&rt(&tokens)).await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.unwrap();
    let access = refreshed["access_token"].as_str().unwrap();

    let changed = app
        .client
        .post(app.url("/v1/auth/password/change"))
        .bearer_auth(access)
        .json(&json!({ "current_password": PASSWORD, "new_password": "Another2Horse" }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200, "{}", changed.text().await.unwrap());
    let sessions = app.client.get(app.url("/v1/sessions")).bearer_auth(access).send().await.unwrap();
    assert_eq!(sessions.status(), 200);
    assert_eq!(sessions.json::<Value>().await.unwrap()["sessions"].as_array().unwrap().len(), 1);
    assert_problem(app.login(email, PASSWORD).await, 401, "invalid_credentials").await;
    let logout = app.client.post(app.url("/v1/auth/logout")).bearer_auth(access).send().await.unwrap();
    assert_eq!(logout.status(), 204);
    assert_eq!(app.me(access).await.status(), 401);
}

/// Whether any server connection the pooler holds for `database` keeps a
/// prepared statement: as many transactions at once as it has server
/// connections, so each lands on a different one, each counting its own.
fn statements_left_on_the_pooler(bouncer: &Bouncer, database: &str, server_connections: usize) -> Vec<String> {
    std::thread::scope(|scope| {
        let counting: Vec<_> = (0..server_connections)
            .map(|_| {
                scope.spawn(|| {
                    let out = bouncer.psql(
                        database,
                        "BEGIN; SELECT pg_sleep(0.5); SELECT count(*) FROM pg_prepared_statements; COMMIT",
                    );
                    out.lines().last().unwrap_or_default().to_string()
                })
            })
            .collect();
        counting.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

#[tokio::test]
async fn behind_pgbouncer_in_transaction_mode_journeys_races_and_two_instances_work() {
    // Two server connections for two instances of eight connections each:
    // every server connection is lent to many clients in turn.
    let bouncer = Bouncer::start(5432, 2);
    let one = spawn_with(
        Options::default().postgres_via(&bouncer.addr).env("LATCHKEY_DATABASE_PREPARED_STATEMENTS", "false"),
    )
    .await;
    one.wait_for_log("prepared statements off").await;
    let two = one.spawn_second().await;

    core_journey(&one, "pooled-one@example.com").await;
    core_journey(&two, "pooled-two@example.com").await;

    // Concurrent refreshes of one token over both instances, each on its own
    // connection, released at once: one successor, whoever wins.
    let token = rt(&one.new_session_for("race@example.com").await);
    let bases = [one.base.clone(), two.base.clone()];
    let answers = burst_with(24, &one.base, move |i, client| {
        let (url, token) = (format!("{}/v1/auth/refresh", bases[i % 2]), token.clone());
        async move {
            let resp = client.post(url).json(&json!({ "refresh_token": token })).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    })
    .await;
    let mut successors = HashSet::new();
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        successors.insert(rt(body));
    }
    assert_eq!(successors.len(), 1, "one successor");
    assert_eq!(
        one.sql(
            "SELECT count(*) FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
             JOIN users u ON u.id = s.user_id WHERE u.email = 'race@example.com' AND t.used_at IS NULL"
        ),
        "1"
    );
    let successor = successors.into_iter().next().unwrap();
    assert_eq!(two.refresh(&successor).await.status(), 200);

    // Logins and refreshes of many accounts at once, spread over both instances.
    let emails: Vec<String> = (0..12).map(|i| format!("many-{i}@example.com")).collect();
    for email in &emails {
        assert_eq!(one.signup(email, PASSWORD).await.status(), 202);
    }
    let bases = [one.base.clone(), two.base.clone()];
    let statuses = burst_with(12, &one.base, move |i, client| {
        let (base, email) = (bases[i % 2].clone(), format!("many-{i}@example.com"));
        async move {
            let login =
                client.post(format!("{base}/v1/auth/login")).json(&json!({ "email": email, "password": PASSWORD }));
            let tokens: Value = login.send().await.unwrap().json().await.unwrap();
            let refresh = client
                .post(format!("{base}/v1/auth/refresh"))
                .json(&json!({ "refresh_token": tokens["refresh_token"] }));
            refresh.send().await.unwrap().status().as_u16()
        }
    })
    .await;
    assert_eq!(statuses, vec![200; 12]);

    // Nothing latchkey prepared is left on the pooler's server connections.
    let database = one.direct_database_url().rsplit('/').next().unwrap().to_string();
    assert_eq!(statements_left_on_the_pooler(&bouncer, &database, 2), vec!["0", "0"]);
}

#[tokio::test]
async fn migrations_through_the_pooler_need_prepared_statements_off() {
    // One server connection: whatever one client leaves on it, the next finds.
    let bouncer = Bouncer::start(5432, 1);
    let app = spawn_with(Options::default()).await;
    let pooled =
        format!("postgres://postgres@{}/{}", bouncer.addr, app.direct_database_url().rsplit('/').next().unwrap());

    let on = [("LATCHKEY_DATABASE_URL", pooled.as_str()), ("LATCHKEY_DATABASE_PREPARED_STATEMENTS", "true")];
    let first = app.cli_with(&on, &["migrate"]).await;
    let second = app.cli_with(&on, &["migrate"]).await;
    let failed = [&first, &second]
        .iter()
        .find(|out| !out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stderr).to_string());
    let failed = failed.expect("with prepared statements on, a pooler in transaction mode breaks a second client");
    assert!(failed.contains("prepared statement \"sqlx_s_1\" already exists"), "{failed}");

    let off = [("LATCHKEY_DATABASE_URL", pooled.as_str()), ("LATCHKEY_DATABASE_PREPARED_STATEMENTS", "false")];
    for _ in 0..3 {
        let out = app.cli_with(&off, &["migrate"]).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

#[tokio::test]
async fn over_tls_with_sslmode_require_and_verify_full() {
    let certs = Certs::generate();
    let cluster = Cluster::start_with_tls(&certs);
    let params = format!("sslmode=verify-full&sslrootcert={}", certs.ca().display());
    let app = spawn_with(Options::default().postgres_on(&cluster.admin_url()).url_params(&params)).await;
    let tokens = app.new_session().await;
    assert_eq!(app.refresh(&rt(&tokens)).await.status(), 200);
    // latchkey's own connections are encrypted (the cluster refuses others).
    let encrypted = app.sql(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) FROM pg_stat_ssl s \
         JOIN pg_stat_activity a USING (pid) WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()",
    );
    let (tls, plain) = encrypted.split_once('|').unwrap();
    assert!(tls.parse::<u32>().unwrap() >= 1, "{encrypted}");
    assert_eq!(plain, "0");

    let url = app.direct_database_url();
    let require = format!("{url}?sslmode=require");
    let out = app.cli_with(&[("LATCHKEY_DATABASE_URL", &require)], &["migrate"]).await;
    assert!(out.status.success(), "sslmode=require: {}", String::from_utf8_lossy(&out.stderr));

    // verify-full checks the certificate: another CA's is refused.
    let stranger = Certs::generate();
    let wrong_ca = format!("{url}?sslmode=verify-full&sslrootcert={}", stranger.ca().display());
    let out = app.cli_with(&[("LATCHKEY_DATABASE_URL", &wrong_ca)], &["migrate"]).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(stderr.contains("certificate"), "{stderr}");
    // And the cluster really takes only TLS.
    let plain = format!("{url}?sslmode=disable");
    let out = app.cli_with(&[("LATCHKEY_DATABASE_URL", &plain)], &["migrate"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no encryption"), "{}", String::from_utf8_lossy(&out.stderr));
}
