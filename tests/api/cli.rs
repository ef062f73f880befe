//! The `latchkey` command line: key ring management, configuration errors.

use std::os::unix::fs::PermissionsExt;

use jsonwebtoken::decode_header;

use crate::helpers::{Options, latchkey_command, spawn_app, spawn_with};

fn stdout(out: &std::process::Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn after_keys_rotate_old_tokens_still_verify_and_new_ones_carry_the_new_kid() {
    let app = spawn_app().await;
    let before = app.new_session().await;
    let old_access = before["access_token"].as_str().unwrap().to_string();
    let old_kid = decode_header(&old_access).unwrap().kid.unwrap();
    let jwks = app.jwks().await;
    assert_eq!(jwks.keys.len(), 2, "active and next are published");
    let next_kid = jwks.keys.iter().map(|k| k.common.key_id.clone().unwrap()).find(|k| *k != old_kid).unwrap();

    stdout(&app.cli(&["keys", "rotate"]).await);
    let jwks = app.wait_for_jwks(|set| set.keys.len() == 3).await;

    // The retired key is still published and still accepted.
    assert!(jwks.find(&old_kid).is_some());
    assert_eq!(app.me(&old_access).await.status(), 200);
    // New tokens are signed by the former next key, without a restart.
    let after = app.new_session().await;
    let new_kid = decode_header(after["access_token"].as_str().unwrap()).unwrap().kid.unwrap();
    assert_eq!(new_kid, next_kid);
    assert_eq!(app.me(after["access_token"].as_str().unwrap()).await.status(), 200);
    // Refreshing an old session also moves it to the new key.
    let refreshed: serde_json::Value =
        app.refresh(before["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(decode_header(refreshed["access_token"].as_str().unwrap()).unwrap().kid.unwrap(), next_kid);
}

#[tokio::test]
async fn keys_prune_drops_retired_keys_only_after_their_tokens_expired() {
    let app =
        spawn_with(Options::default().env("LATCHKEY_ACCESS_TOKEN_TTL_SECS", 1).env("LATCHKEY_CLOCK_LEEWAY_SECS", 0))
            .await;
    stdout(&app.cli(&["keys", "rotate"]).await);
    assert!(stdout(&app.cli(&["keys", "prune"]).await).contains("pruned 0"), "too early to prune");

    // The key was retired "an hour ago": its tokens (1 s) are long expired.
    let ring_path = app.keys_dir().join("ring.json");
    let mut ring: serde_json::Value = serde_json::from_slice(&std::fs::read(&ring_path).unwrap()).unwrap();
    let an_hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    for key in ring["keys"].as_array_mut().unwrap() {
        if key["state"] == "retired" {
            key["retired_at"] = an_hour_ago.clone().into();
        }
    }
    std::fs::write(&ring_path, serde_json::to_vec_pretty(&ring).unwrap()).unwrap();
    assert!(stdout(&app.cli(&["keys", "prune"]).await).contains("pruned 1"));
    let listing = stdout(&app.cli(&["keys", "list"]).await);
    assert!(!listing.contains("retired"), "{listing}");
    assert!(listing.contains("active") && listing.contains("next"), "{listing}");
    app.wait_for_jwks(|set| set.keys.len() == 2).await;
}

#[tokio::test]
async fn private_key_files_are_readable_by_the_owner_only() {
    let app = spawn_app().await;
    let mut private = 0;
    for entry in std::fs::read_dir(app.keys_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pem" || e == "key") {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
            private += 1;
        }
    }
    assert_eq!(private, 4, "two signing keys, the refresh secret and the second-factor key");
}

#[tokio::test]
async fn keys_generate_refuses_to_overwrite_a_ring() {
    let app = spawn_app().await;
    let out = app.cli(&["keys", "generate"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds a key ring"));
}

async fn start_with_bad(var: &str, value: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out =
        latchkey_command(dir.path(), &[(var.to_string(), value.to_string())]).arg("serve").output().await.unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn invalid_configuration_stops_start_up_with_one_line_naming_the_variable() {
    for (var, value) in [
        ("LATCHKEY_BIND", "not-an-address"),
        ("LATCHKEY_SIGNING_ALG", "HS256"),
        ("LATCHKEY_ACCESS_TOKEN_TTL_SECS", "soon"),
        ("LATCHKEY_DATABASE_URL", "mysql://x"),
        ("LATCHKEY_ISSUER", "not a url"),
        ("LATCHKEY_CLOCK_LEEWAY_SECS", "3600"),
        // Parsed by the configuration, built at start-up: reported the same way.
        ("LATCHKEY_SMTP_URL", "smtp://user:pass@host:notaport"),
        ("LATCHKEY_REDIRECT_ALLOW_LIST", "ftp://files.example.com"),
    ] {
        let (code, stderr) = start_with_bad(var, value).await;
        assert_eq!(code, Some(2), "{var}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{var}: {stderr}");
        assert!(stderr.contains(var), "{var} not named in {stderr:?}");
    }
}

#[tokio::test]
async fn migrate_applies_the_schema_and_exits() {
    let app = spawn_app().await;
    // Already migrated by the server; running it again is a no-op that succeeds.
    assert!(stdout(&app.cli(&["migrate"]).await).contains("migrations applied"));
}
