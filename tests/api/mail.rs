//! Verified email, the password flows and mail delivery, against a real SMTP
//! server (aiosmtpd in its own process).

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    helpers::{Backend, Options, PASSWORD, TestApp, assert_problem, response_shape as shape, spawn_with},
    on_both_backends,
    smtp::{SmtpServer, free_port},
};

const APP_URL: &str = "http://app.test";
const VERIFY: &str = "http://app.test/verify-email?token=";
const RESET: &str = "http://app.test/reset-password?token=";
const NEW_PASSWORD: &str = "Brand9NewSecret";

/// Verification required (the product default), mail to `smtp_url`, fast retries.
fn mail_options(backend: Backend, smtp_url: &str) -> Options {
    Options::backend(backend)
        .env("LATCHKEY_REQUIRE_EMAIL_VERIFICATION", "true")
        .env("LATCHKEY_SMTP_URL", smtp_url)
        .env("LATCHKEY_MAIL_FROM", "Latchkey Test <auth@latchkey.test>")
        .env("LATCHKEY_APP_URL", APP_URL)
        .env("LATCHKEY_MAIL_RETRY_MS", "200")
        .env("LATCHKEY_MAIL_POLL_MS", "100")
}

async fn start(backend: Backend) -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start().await;
    let app = spawn_with(mail_options(backend, &smtp.url())).await;
    (app, smtp)
}

fn address() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.unwrap()
}

/// Signs `email` up and verifies it through the mailed link, confirming the password.
async fn verified_account(app: &TestApp, smtp: &SmtpServer, email: &str) {
    assert_eq!(app.signup(email, PASSWORD).await.status(), 202);
    let token = smtp.nth(email, 1).await.token(VERIFY);
    assert_eq!(app.post("/v1/auth/verify-email", json!({ "token": token, "password": PASSWORD })).await.status(), 200);
}

async fn the_whole_signup_journey(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let email = address();
    let resp = app
        .post("/v1/auth/signup", json!({ "email": email, "password": PASSWORD, "name": "Ada <b>Lovelace</b>" }))
        .await;
    assert_eq!(resp.status(), 202);
    assert_eq!(body(resp).await["message"], "Check your email to finish signing up.");
    assert_problem(app.login(&email, PASSWORD).await, 403, "email_not_verified").await;

    let mail = smtp.nth(&email, 1).await;
    assert_eq!(mail.subject, "Verify your email address");
    assert_eq!(mail.from, "Latchkey Test <auth@latchkey.test>");
    assert!(mail.to == email || mail.to.ends_with(&format!("<{email}>")), "{}", mail.to);
    assert_eq!(mail.content_type, "multipart/alternative");
    assert_eq!(mail.part_types, ["multipart/alternative", "text/plain", "text/html"]);
    assert!(mail.text.contains("expires in 24 hours"), "{}", mail.text);
    assert!(mail.html.contains("expires in 24 hours"), "{}", mail.html);
    // The name was typed by whoever signed up, who has not proved the
    // address yet: the mail does not show it.
    assert!(mail.text.starts_with("Hello,"), "{}", mail.text);
    assert!(!mail.text.contains("Lovelace") && !mail.html.contains("Lovelace"), "{}", mail.html);
    assert!(!mail.to.contains("Lovelace"), "{}", mail.to);
    let token = mail.token(VERIFY);
    assert!(token.starts_with("lk_ev_") && token.len() == 6 + 43, "{token}");

    let resp = app.post("/v1/auth/verify-email", json!({ "token": token, "password": PASSWORD })).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(body(resp).await["password_removed"], false);
    let tokens = body(app.login(&email, PASSWORD).await).await;
    let me = body(app.me(tokens["access_token"].as_str().unwrap()).await).await;
    assert_eq!(me["email"], email.as_str());
    assert_eq!(me["email_verified"], true);

    assert_problem(app.post("/v1/auth/verify-email", json!({ "token": token })).await, 400, "token_used").await;
    // Verified, the name is the owner's and shows in mail.
    assert_eq!(app.post("/v1/auth/password/forgot", json!({ "email": email })).await.status(), 202);
    let reset = smtp.nth(&email, 2).await;
    assert!(reset.text.contains("Hi Ada <b>Lovelace</b>,"), "{}", reset.text);
    assert!(reset.html.contains("Ada &#60;b&#62;Lovelace&#60;/b&#62;"), "{}", reset.html);
    // What is stored is the SHA-256 of the token's bytes, nothing else.
    if backend == Backend::Postgres {
        let standard_b64 = token[6..].replace('-', "+").replace('_', "/") + "=";
        let matching =
            format!("SELECT count(*) FROM email_tokens WHERE hash = sha256(decode('{standard_b64}', 'base64'))");
        assert_eq!(app.sql(&matching), "1");
        assert_eq!(app.sql("SELECT count(*) FROM email_tokens WHERE purpose = 'verify_email'"), "1");
        wait_until_sent(&app).await;
    }
}
on_both_backends!(the_whole_signup_journey);

/// Waits until the outbox is empty: every queued mail sent or dropped.
async fn wait_until_sent(app: &TestApp) {
    for _ in 0..100 {
        if app.sql("SELECT count(*) FROM mail_outbox") == "0" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("mail left in the outbox: {}", app.sql("SELECT kind, attempts, last_error FROM mail_outbox"));
}

#[tokio::test]
async fn answers_reveal_nothing_about_which_addresses_have_accounts() {
    let (app, smtp) = start(Backend::Postgres).await;
    let owner = address();
    verified_account(&app, &smtp, &owner).await;
    let strangers = [address(), address(), address()];
    let paths = ["/v1/auth/signup", "/v1/auth/verify-email/resend", "/v1/auth/password/forgot"];
    for (path, stranger) in paths.iter().zip(&strangers) {
        let known = shape(app.post(path, json!({ "email": owner, "password": "Other7Tortoise" })).await).await;
        let unknown = shape(app.post(path, json!({ "email": stranger, "password": "Other7Tortoise" })).await).await;
        assert_eq!(known, unknown, "{path}");
        assert_eq!(known.0, 202, "{path}");
    }

    // The owner was told about the sign-up attempt and got the reset link;
    // the verified account got no second verification mail.
    let mails = smtp.wait_for(&owner, 3).await;
    let subjects: Vec<_> = mails.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(subjects[1..], ["Someone tried to sign up with your email address", "Reset your password"]);
    assert!(mails[1].text.contains("already has an account"), "{}", mails[1].text);
    assert!(mails[1].text.contains("log in with your password"), "{}", mails[1].text);
    mails[1].link("http://app.test/forgot-password");
    // The attempt changed nothing: the old password still works, and the
    // one tried is answered as a new unverified account would answer it.
    assert_eq!(app.login(&owner, PASSWORD).await.status(), 200);
    assert_problem(app.login(&owner, "Other7Tortoise").await, 403, "email_not_verified").await;

    // The new address signed up (and was mailed a link); the resend and
    // forgot requests for addresses without an account sent nothing.
    wait_until_sent(&app).await;
    assert_eq!(smtp.received_by(&strangers[0])[0].subject, "Verify your email address");
    assert_eq!(smtp.received_by(&strangers[1]).len(), 0);
    assert_eq!(smtp.received_by(&strangers[2]).len(), 0);
    assert_eq!(smtp.received().len(), 4);
}

#[tokio::test]
async fn a_sign_up_attempt_on_an_unverified_account_points_its_owner_to_a_reset() {
    let (app, smtp) = start(Backend::Postgres).await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    smtp.nth(&email, 1).await;
    // Someone else (or the owner, who lost the first mail) signs up again:
    // the account keeps its password and no verification link is sent, so
    // whoever set that password cannot have it verified by the owner's click.
    assert_eq!(app.signup(&email, "Squatter1Password").await.status(), 202);
    let notice = smtp.nth(&email, 2).await;
    assert_eq!(notice.subject, "Someone tried to sign up with your email address");
    assert!(notice.text.contains("never verified"), "{}", notice.text);
    notice.link("http://app.test/forgot-password");
    // Both passwords get the answer a new, unverified account gets: neither
    // tells whether the address was taken.
    assert_problem(app.login(&email, "Squatter1Password").await, 403, "email_not_verified").await;
    assert_problem(app.login(&email, PASSWORD).await, 403, "email_not_verified").await;
    assert_problem(app.login(&email, "Neither1Password").await, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn a_newer_verification_link_supersedes_the_older_one() {
    let (app, smtp) = start(Backend::Postgres).await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    let first = smtp.nth(&email, 1).await.token(VERIFY);
    let resp = app.post("/v1/auth/verify-email/resend", json!({ "email": email.to_uppercase() })).await;
    assert_eq!(resp.status(), 202);
    let second = smtp.nth(&email, 2).await.token(VERIFY);
    assert_ne!(first, second);

    assert_problem(app.post("/v1/auth/verify-email", json!({ "token": first })).await, 400, "token_superseded").await;
    let verified = app.post("/v1/auth/verify-email", json!({ "token": second, "password": PASSWORD })).await;
    assert_eq!(verified.status(), 200);
    // Verified: asking again sends nothing more.
    assert_eq!(app.post("/v1/auth/verify-email/resend", json!({ "email": email })).await.status(), 202);
    assert_eq!(app.post("/v1/auth/password/forgot", json!({ "email": email })).await.status(), 202);
    let mails = smtp.wait_for(&email, 3).await;
    assert_eq!(mails[2].subject, "Reset your password");
}

#[tokio::test]
async fn malformed_and_misdirected_tokens_are_invalid() {
    let (app, smtp) = start(Backend::Postgres).await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    let verify_token = smtp.nth(&email, 1).await.token(VERIFY);
    for token in ["", "lk_ev_short", "not-a-token", &verify_token.replace("lk_ev_", "lk_pr_")] {
        let resp = app.post("/v1/auth/verify-email", json!({ "token": token })).await;
        assert_problem(resp, 400, "token_invalid").await;
    }
    // A verification token does not reset a password.
    let resp =
        app.post("/v1/auth/password/reset", json!({ "token": verify_token, "new_password": NEW_PASSWORD })).await;
    assert_problem(resp, 400, "token_invalid").await;
    assert_problem(app.post("/v1/auth/password/forgot", json!({ "email": "nope" })).await, 422, "invalid_email").await;
    // The real token still works after all that.
    let verified = app.post("/v1/auth/verify-email", json!({ "token": verify_token, "password": PASSWORD })).await;
    assert_eq!(verified.status(), 200);
}

async fn the_password_reset_journey(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let email = address();
    verified_account(&app, &smtp, &email).await;
    let laptop = body(app.login(&email, PASSWORD).await).await;
    let phone = body(app.login(&email, PASSWORD).await).await;

    assert_eq!(app.post("/v1/auth/password/forgot", json!({ "email": email })).await.status(), 202);
    let mail = smtp.nth(&email, 2).await;
    assert_eq!(mail.subject, "Reset your password");
    assert!(mail.text.contains("expires in 1 hour"), "{}", mail.text);
    let token = mail.token(RESET);
    assert!(token.starts_with("lk_pr_"));

    // A weak password is refused without using the link up.
    let resp = app.post("/v1/auth/password/reset", json!({ "token": token, "new_password": "weak" })).await;
    assert_problem(resp, 422, "invalid_password").await;
    let resp = app.post("/v1/auth/password/reset", json!({ "token": token, "new_password": NEW_PASSWORD })).await;
    assert_eq!(resp.status(), 200);
    let reply = body(resp).await;
    assert!(reply.get("access_token").is_none(), "a reset does not log in: {reply}");

    for session in [&laptop, &phone] {
        let refresh = session["refresh_token"].as_str().unwrap();
        assert_problem(app.refresh(refresh).await, 401, "invalid_refresh_token").await;
        assert_problem(app.me(session["access_token"].as_str().unwrap()).await, 401, "invalid_token").await;
    }
    assert_problem(app.login(&email, PASSWORD).await, 401, "invalid_credentials").await;
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status(), 200);

    let notice = smtp.nth(&email, 3).await;
    assert_eq!(notice.subject, "Your password was changed");
    assert_eq!(notice.part_types, ["multipart/alternative", "text/plain", "text/html"]);
    notice.link("http://app.test/forgot-password");

    let again = app.post("/v1/auth/password/reset", json!({ "token": token, "new_password": "Another1Secret" })).await;
    assert_problem(again, 400, "token_used").await;
}
on_both_backends!(the_password_reset_journey);

#[tokio::test]
async fn resetting_the_password_verifies_the_address_and_supersedes_other_links() {
    let (app, smtp) = start(Backend::Postgres).await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    smtp.nth(&email, 1).await;
    app.post("/v1/auth/password/forgot", json!({ "email": email })).await;
    let first = smtp.nth(&email, 2).await.token(RESET);
    app.post("/v1/auth/password/forgot", json!({ "email": email })).await;
    let second = smtp.nth(&email, 3).await.token(RESET);

    let resp = app.post("/v1/auth/password/reset", json!({ "token": first, "new_password": NEW_PASSWORD })).await;
    assert_problem(resp, 400, "token_superseded").await;
    let resp = app.post("/v1/auth/password/reset", json!({ "token": second, "new_password": NEW_PASSWORD })).await;
    assert_eq!(resp.status(), 200);
    // The link proved the mailbox: the account can log in without the verification mail.
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status(), 200);
}

async fn changing_the_password(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let email = address();
    verified_account(&app, &smtp, &email).await;
    let here = body(app.login(&email, PASSWORD).await).await;
    let elsewhere = body(app.login(&email, PASSWORD).await).await;
    let access = here["access_token"].as_str().unwrap();
    let change = |current: &str, new: &str| {
        app.client
            .post(app.url("/v1/auth/password/change"))
            .bearer_auth(access)
            .json(&json!({ "current_password": current, "new_password": new }))
            .send()
    };

    assert_problem(change("Wrong1Password", NEW_PASSWORD).await.unwrap(), 403, "invalid_current_password").await;
    assert_problem(change(PASSWORD, "weakling").await.unwrap(), 422, "invalid_password").await;
    let resp = app
        .client
        .post(app.url("/v1/auth/password/change"))
        .json(&json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 401, "invalid_token").await;
    assert_eq!(app.login(&email, PASSWORD).await.status(), 200, "nothing changed so far");

    // A reset link asked for before the change dies with the old password.
    assert_eq!(app.post("/v1/auth/password/forgot", json!({ "email": email })).await.status(), 202);
    let stale_reset = smtp.nth(&email, 2).await.token(RESET);

    assert_eq!(change(PASSWORD, NEW_PASSWORD).await.unwrap().status(), 200);
    // This session goes on; the other one is over.
    assert_eq!(app.refresh(here["refresh_token"].as_str().unwrap()).await.status(), 200);
    assert_problem(app.refresh(elsewhere["refresh_token"].as_str().unwrap()).await, 401, "invalid_refresh_token").await;
    assert_problem(app.login(&email, PASSWORD).await, 401, "invalid_credentials").await;
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status(), 200);
    assert_eq!(smtp.nth(&email, 3).await.subject, "Your password was changed");
    let resp =
        app.post("/v1/auth/password/reset", json!({ "token": stale_reset, "new_password": "Sneaky1Password" })).await;
    assert_problem(resp, 400, "token_superseded").await;
}
on_both_backends!(changing_the_password);

#[tokio::test]
async fn expired_links_are_refused() {
    let smtp = SmtpServer::start().await;
    let app = crate::helpers::spawn_with_clock(mail_options(Backend::Postgres, &smtp.url())).await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    let mail = smtp.nth(&email, 1).await;
    assert!(mail.text.contains("expires in 24 hours"), "{}", mail.text);
    app.post("/v1/auth/password/forgot", json!({ "email": email })).await;
    let reset = smtp.nth(&email, 2).await.token(RESET);
    // A reset link lives an hour, a verification link a day.
    app.advance(chrono::Duration::minutes(61));
    let resp = app.post("/v1/auth/password/reset", json!({ "token": reset, "new_password": NEW_PASSWORD })).await;
    assert_problem(resp, 400, "token_expired").await;
    app.advance(chrono::Duration::hours(23));

    let resp = app.post("/v1/auth/verify-email", json!({ "token": mail.token(VERIFY) })).await;
    assert_problem(resp, 400, "token_expired").await;
    assert_problem(app.login(&email, PASSWORD).await, 403, "email_not_verified").await;
}

#[tokio::test]
async fn mail_survives_an_smtp_outage_and_a_crash() {
    let port = free_port();
    let mut app = spawn_with(mail_options(Backend::Postgres, &format!("smtp://127.0.0.1:{port}"))).await;
    let email = address();
    // The request does not wait for the mail server.
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);

    // Attempts fail and are recorded while nothing listens: wait for a second
    // failure whose retry is scheduled (not an attempt under way, whose
    // lease would hold the row for minutes after the kill).
    let failed_twice = "SELECT count(*) FROM mail_outbox WHERE attempts >= 2 AND last_error IS NOT NULL \
                        AND next_attempt_at < now() + interval '10 seconds'";
    let mut seen = String::new();
    for _ in 0..100 {
        seen = app.sql(failed_twice);
        if seen == "1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, "1", "retried while the server was down");

    // The process dies without any chance to clean up; the queued mail is in
    // the database, and the next instance sends it once SMTP is back.
    app.kill();
    app.wait().await;
    let smtp = SmtpServer::start_on(port).await;
    let _second = app.spawn_second().await;
    let token = smtp.nth(&email, 1).await.token(VERIFY);
    let verified = _second.post("/v1/auth/verify-email", json!({ "token": token, "password": PASSWORD })).await;
    assert_eq!(verified.status(), 200);
}

#[tokio::test]
async fn a_refused_mail_is_kept_counted_and_can_be_retried() {
    let (app, smtp) = start(Backend::Postgres).await;
    let refused = format!("reject-{}", address());
    assert_eq!(app.signup(&refused, PASSWORD).await.status(), 202);

    let mut failed = String::new();
    for _ in 0..100 {
        failed = app.sql("SELECT count(*) FROM mail_outbox WHERE failed_at IS NOT NULL");
        if failed == "1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failed, "1", "a 550 is permanent: no retries, the row is marked failed");
    assert_eq!(app.sql("SELECT attempts FROM mail_outbox"), "1");

    let status = app.cli(&["mail", "status"]).await;
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert!(stdout.contains("queued: 0\nfailed: 1\n"), "{stdout}");
    assert!(stdout.contains("verify_email") && stdout.contains("550"), "{stdout}");

    let failed_at = app.sql("SELECT failed_at FROM mail_outbox");
    let retry = app.cli(&["mail", "retry"]).await;
    assert!(String::from_utf8_lossy(&retry.stdout).contains("queued 1 failed mail(s) again"));
    // The running server takes it up again (and is refused again).
    let mut again = String::new();
    for _ in 0..100 {
        again = app.sql("SELECT coalesce(failed_at::text, '') FROM mail_outbox");
        if !again.is_empty() && again != failed_at {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!again.is_empty() && again != failed_at, "retried and failed again: {failed_at} → {again}");
    assert_eq!(smtp.received().len(), 0);
}

#[tokio::test]
async fn without_smtp_mail_is_written_to_files_and_the_link_logged() {
    let app = spawn_with(
        Options::default().env("LATCHKEY_REQUIRE_EMAIL_VERIFICATION", "true").env("LATCHKEY_APP_URL", APP_URL),
    )
    .await;
    let email = address();
    assert_eq!(app.signup(&email, PASSWORD).await.status(), 202);
    // The link is logged once the file is written.
    let line = app.wait_for_log("mail: Verify your email address — http://app.test/verify-email?token=lk_ev_").await;
    let token = line.split("?token=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let file = line.split("file=").nth(1).expect("the file is named").trim().to_string();
    assert!(file.starts_with("data/mail/") && file.ends_with(".eml"), "{line}");
    let raw = std::fs::read_to_string(app.work_dir().join(&file)).unwrap();
    assert!(raw.contains("Subject: Verify your email address"), "{raw}");
    assert!(raw.contains("multipart/alternative"), "{raw}");
    assert!(raw.contains(&format!("To: {email}")), "{raw}");
    // The logged link is the real one.
    assert_eq!(app.post("/v1/auth/verify-email", json!({ "token": token, "password": PASSWORD })).await.status(), 200);
    assert_eq!(app.login(&email, PASSWORD).await.status(), 200);
}
