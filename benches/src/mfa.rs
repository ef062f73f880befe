//! Second factors: `POST /v1/auth/mfa/verify` on its own, and a sign-in with
//! a second factor (login, then verify) next to a plain login. A TOTP code
//! works once per account and time step, and an `mfa_token` once, so each
//! verify needs an account and a token of its own: they are seeded by SQL
//! (secrets sealed with the server's own `mfa.key`), not through the API,
//! whose logins would cost an argon2 hash each.

use std::{collections::VecDeque, path::Path};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, StatusCode};
use ring::{
    digest,
    rand::{SecureRandom, SystemRandom},
};
use uuid::Uuid;

use crate::{
    load::{Client, request},
    pg,
};

/// The one TOTP secret every seeded account shares (each sealed for its own account).
const SECRET: &[u8; 20] = b"bench-totp-secret-20";

/// RFC 6238, HMAC-SHA-1, six digits, 30-second steps: the code of now.
fn code_now() -> String {
    let step = chrono::Utc::now().timestamp() as u64 / 30;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, SECRET);
    let mac = ring::hmac::sign(&key, &step.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[19] & 0x0f);
    let binary = u32::from_be_bytes(mac[offset..offset + 4].try_into().expect("4 bytes")) & 0x7fff_ffff;
    format!("{:06}", binary % 1_000_000)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What was seeded: one `mfa_token` per verify (`verifiers`, spread over the
/// clients), and accounts for sign-ins (`sign_ins`, spread too).
pub struct Seeded {
    pub verifiers: Vec<Vec<String>>,
    pub sign_ins: Vec<Vec<String>>,
}

/// Seeds `tokens` accounts with TOTP on, each with a live `mfa_token`, and
/// `accounts` more with TOTP on and the benchmark's password, for `clients`.
pub fn seed(
    db: &pg::BenchDb,
    keys_dir: &Path,
    password: &str,
    clients: usize,
    tokens: usize,
    accounts: usize,
) -> anyhow::Result<Seeded> {
    let root: [u8; 32] = std::fs::read(keys_dir.join("mfa.key"))?
        .try_into()
        .map_err(|_| anyhow::anyhow!("mfa.key must hold 32 bytes"))?;
    let keys = latchkey::MfaKeys::new(&root);
    let hash = {
        use argon2::PasswordHasher;
        let salt = argon2::password_hash::SaltString::encode_b64(b"bench-salt-16byt").map_err(anyhow::Error::msg)?;
        latchkey::argon2().hash_password(password.as_bytes(), &salt).map_err(anyhow::Error::msg)?.to_string()
    };
    let rng = SystemRandom::new();
    let mut seeded = Seeded { verifiers: vec![Vec::new(); clients], sign_ins: vec![Vec::new(); clients] };
    let (mut users, mut secrets, mut challenges) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..tokens + accounts {
        let id = Uuid::now_v7();
        let email = format!("mfa{i}@bench.invalid");
        users.push(format!("('{id}', '{email}', '{email}', now(), '{hash}', now(), now())"));
        secrets.push(format!("('{id}', '\\x{}', now(), now())", hex(&keys.seal(id, SECRET))));
        if i < tokens {
            let mut bytes = [0u8; 32];
            rng.fill(&mut bytes).map_err(|_| anyhow::anyhow!("no randomness"))?;
            let token_hash = hex(digest::digest(&digest::SHA256, &bytes).as_ref());
            challenges.push(format!("('\\x{token_hash}', '{id}', 'pwd', 0, now(), now() + interval '1 hour')"));
            seeded.verifiers[i % clients].push(format!("lk_mfa_{}", B64.encode(bytes)));
        } else {
            seeded.sign_ins[i % clients].push(email);
        }
    }
    let mut sql = String::from("BEGIN;\n");
    let tables = [
        ("users (id, email, email_key, email_verified_at, password_hash, created_at, updated_at)", users),
        ("mfa_totp (user_id, secret_sealed, created_at, confirmed_at)", secrets),
        ("mfa_challenges (hash, user_id, method, attempts, created_at, expires_at)", challenges),
    ];
    for (table, rows) in tables {
        for chunk in rows.chunks(1000) {
            sql.push_str(&format!("INSERT INTO {table} VALUES {};\n", chunk.join(",\n")));
        }
    }
    sql.push_str("COMMIT;\n");
    pg::psql_script(&db.name, &sql)?;
    Ok(seeded)
}

/// Presents its own `mfa_token`s, one per request, each with the code of now.
pub struct Verifier {
    pub tokens: VecDeque<String>,
}

impl Client for Verifier {
    fn request(&mut self) -> Request<Full<Bytes>> {
        let token = self.tokens.pop_front().unwrap_or_default();
        let body = format!(r#"{{"mfa_token":"{token}","code":"{}"}}"#, code_now());
        request("POST", "/v1/auth/mfa/verify", Some(body), &[])
    }

    fn response(&mut self, status: StatusCode, body: &[u8]) -> Result<(), String> {
        if status == StatusCode::OK {
            Ok(())
        } else {
            Err(format!("mfa/verify answered {status}: {}", String::from_utf8_lossy(body)))
        }
    }
}

/// Signs in with a second factor, again and again: a login (403
/// `mfa_required`), then the verify with its token. Each sign-in takes the
/// next of its accounts and none is used twice, so no code is presented
/// twice in a time step (a client that runs out answers with errors).
pub struct SignIn {
    pub accounts: VecDeque<String>,
    pub password: String,
    /// The token of the login just answered, to verify next.
    pending: Option<String>,
}

impl SignIn {
    pub fn new(accounts: Vec<String>, password: &str) -> Self {
        Self { accounts: accounts.into(), password: password.into(), pending: None }
    }
}

#[derive(serde::Deserialize)]
struct Required<'a> {
    #[serde(borrow)]
    mfa_token: &'a str,
}

impl Client for SignIn {
    fn request(&mut self) -> Request<Full<Bytes>> {
        if let Some(token) = self.pending.take() {
            let body = format!(r#"{{"mfa_token":"{token}","code":"{}"}}"#, code_now());
            return request("POST", "/v1/auth/mfa/verify", Some(body), &[]);
        }
        let email = self.accounts.pop_front().unwrap_or_default();
        let body = format!(r#"{{"email":"{email}","password":"{}"}}"#, self.password);
        request("POST", "/v1/auth/login", Some(body), &[])
    }

    fn response(&mut self, status: StatusCode, body: &[u8]) -> Result<(), String> {
        match status {
            StatusCode::FORBIDDEN => {
                let required: Required = serde_json::from_slice(body).map_err(|e| e.to_string())?;
                self.pending = Some(required.mfa_token.to_string());
                Ok(())
            }
            StatusCode::OK => Ok(()),
            other => Err(format!("sign-in answered {other}: {}", String::from_utf8_lossy(body))),
        }
    }
}
