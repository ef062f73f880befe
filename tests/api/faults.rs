//! Fault drills (README "Running several instances", faults): a stream of
//! refreshes and logins from 32 clients against two instances while the
//! database restarts, or while an instance is SIGKILLed and started again.
//! The restart drill runs on a cluster of the test's own (`pg::Cluster`).

use std::{
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    helpers::{Options, PASSWORD, TestApp, spawn_with},
    pg::Cluster,
    smtp::{SmtpServer, free_port},
};

const CLIENTS: usize = 32;
/// No request may take longer than this, whatever the database is doing:
/// the pool's acquire timeout (5 s) plus room for a slow machine.
const BOUND: Duration = Duration::from_secs(7);
/// Once latchkey has seen the database gone, a request needing it is
/// answered at once (503), not after the acquire timeout.
const FAST: Duration = Duration::from_secs(1);

/// One answer a client got.
#[derive(Debug, Clone)]
struct Answer {
    started: Instant,
    took: Duration,
    /// 0: no HTTP answer (the connection failed).
    status: u16,
    /// The problem `code`, for a problem+json answer.
    code: Option<String>,
    instance: usize,
}

/// 32 clients, each holding one session's latest refresh token, refreshing
/// it on the instances in turn, with a login every tenth request.
struct Load {
    chains: Vec<Arc<Mutex<String>>>,
    answers: Arc<Mutex<Vec<Answer>>>,
    running: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    async fn start(first: &TestApp, bases: Arc<RwLock<Vec<String>>>) -> Self {
        let (answers, running) = (Arc::<Mutex<Vec<Answer>>>::default(), Arc::new(AtomicBool::new(true)));
        let mut chains = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..CLIENTS {
            let email = format!("drill-{i}@example.com");
            let chain = Arc::new(Mutex::new(
                first.new_session_for(&email).await["refresh_token"].as_str().unwrap().to_string(),
            ));
            chains.push(chain.clone());
            let (answers, running, bases) = (answers.clone(), running.clone(), bases.clone());
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
                let mut n = i;
                while running.load(Ordering::SeqCst) {
                    n += 1;
                    let instance = n % 2;
                    let base = bases.read().unwrap()[instance].clone();
                    let token = chain.lock().unwrap().clone();
                    let request = if n % 10 == 0 {
                        client
                            .post(format!("{base}/v1/auth/login"))
                            .json(&json!({ "email": email, "password": PASSWORD }))
                    } else {
                        client.post(format!("{base}/v1/auth/refresh")).json(&json!({ "refresh_token": token }))
                    };
                    let started = Instant::now();
                    let (status, body) = match request.send().await {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
                        }
                        Err(_) => (0, Value::Null),
                    };
                    let took = started.elapsed();
                    if status == 200 && n % 10 != 0 {
                        *chain.lock().unwrap() = body["refresh_token"].as_str().unwrap().to_string();
                    }
                    let code = body["code"].as_str().map(str::to_string);
                    answers.lock().unwrap().push(Answer { started, took, status, code, instance });
                    tokio::time::sleep(Duration::from_millis(60)).await;
                }
            }));
        }
        Self { chains, answers, running, tasks }
    }

    async fn stop(self) -> (Vec<String>, Vec<Answer>) {
        self.running.store(false, Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
        let chains = self.chains.iter().map(|c| c.lock().unwrap().clone()).collect();
        let answers = self.answers.lock().unwrap().clone();
        (chains, answers)
    }
}

async fn ready(app: &TestApp) -> u16 {
    match app.client.get(app.url("/readyz")).timeout(BOUND).send().await {
        Ok(resp) => resp.status().as_u16(),
        Err(_) => 0,
    }
}

async fn wait_until_ready(apps: &[&TestApp]) {
    for app in apps {
        for _ in 0..120 {
            if ready(app).await == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(ready(app).await, 200, "{} never became ready again", app.base);
    }
}

/// What must hold once the dust settles: every chain a client holds still
/// refreshes, each session has exactly one live refresh token, and no
/// session was ended (no refresh was taken for a reuse).
async fn every_chain_survives(app: &TestApp, chains: &[String]) {
    for chain in chains {
        let resp = app.refresh(chain).await;
        assert_eq!(resp.status(), 200, "a chain no longer refreshes: {}", resp.text().await.unwrap());
    }
    let sessions_without_one_live_token = app.sql(
        "SELECT count(*) FROM sessions s WHERE s.revoked_at IS NULL AND \
         (SELECT count(*) FROM refresh_tokens t WHERE t.session_id = s.id AND t.used_at IS NULL) <> 1",
    );
    assert_eq!(sessions_without_one_live_token, "0");
    assert_eq!(app.sql("SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL"), "0");
}

fn slowest(answers: &[Answer]) -> Duration {
    answers.iter().map(|a| a.took).max().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_under_load_fails_fast_and_recovers_without_a_restart() {
    let cluster = Cluster::start();
    // Mail goes to an SMTP server that is not up yet: queued mail waits in the outbox.
    let smtp_port = free_port();
    let one = spawn_with(
        Options::default()
            .postgres_on(&cluster.admin_url())
            .env("LATCHKEY_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))
            .env("LATCHKEY_MAIL_RETRY_MS", 1500)
            .env("LATCHKEY_MAIL_MAX_ATTEMPTS", 50),
    )
    .await;
    let two = one.spawn_second().await;
    let bases = Arc::new(RwLock::new(vec![one.base.clone(), two.base.clone()]));
    let load = Load::start(&one, bases).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Four reset mails are queued; their first send fails (no SMTP server).
    for i in 0..4 {
        let resp = one.post("/v1/auth/password/forgot", json!({ "email": format!("drill-{i}@example.com") })).await;
        assert_eq!(resp.status(), 202);
    }
    for _ in 0..100 {
        if one.sql("SELECT count(*) FROM mail_outbox WHERE attempts >= 1") == "4" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(one.sql("SELECT count(*) FROM mail_outbox WHERE attempts >= 1 AND failed_at IS NULL"), "4");

    let stopping = Instant::now();
    tokio::task::block_in_place(|| cluster.stop());
    let stopped = Instant::now();
    // While the database is away: not ready, on both instances.
    let mut readiness = Vec::new();
    let smtp = SmtpServer::start_on(smtp_port).await;
    while stopped.elapsed() < Duration::from_secs(5) {
        readiness.push(ready(&one).await);
        readiness.push(ready(&two).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let resuming = Instant::now();
    tokio::task::block_in_place(|| cluster.resume());
    wait_until_ready(&[&one, &two]).await;
    let recovered = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (chains, answers) = load.stop().await;

    assert!(readiness.iter().all(|s| *s == 503), "readyz during the outage: {readiness:?}");
    let down: Vec<_> = answers
        .iter()
        .filter(|a| a.started > stopped + Duration::from_millis(100) && a.started + a.took < resuming)
        .collect();
    assert!(down.len() >= CLIENTS, "the outage saw only {} requests", down.len());
    for answer in &down {
        assert_eq!((answer.status, answer.code.as_deref()), (503, Some("service_unavailable")), "{answer:?}");
        assert!(answer.took < FAST, "a request while the database was down took {:?}", answer.took);
    }
    // Around the outage an answer is a success or a 503, never a failed
    // connection, a 500 or a refused token; and none waits past the bound.
    for answer in &answers {
        assert!(matches!(answer.status, 200 | 503), "{answer:?}");
    }
    let late = slowest(&answers);
    assert!(late < BOUND, "a request took {late:?}");
    let after: Vec<_> = answers.iter().filter(|a| a.started > recovered).collect();
    assert!(!after.is_empty() && after.iter().all(|a| a.status == 200), "not recovered: {after:?}");
    eprintln!(
        "drill: stop took {:?}; {} answers, {} while down, slowest {late:?}; ready again {:?} after the restart began",
        stopped - stopping,
        answers.len(),
        down.len(),
        recovered - resuming
    );

    every_chain_survives(&one, &chains).await;
    // The mail queued before the outage is delivered after it.
    for _ in 0..150 {
        if smtp.received().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut to: Vec<String> = smtp.received().iter().map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(to, (0..4).map(|i| format!("drill-{i}@example.com")).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_instance_killed_mid_stream_loses_no_chain() {
    let mut one = spawn_with(Options::default()).await;
    let two = one.spawn_second().await;
    let bases = Arc::new(RwLock::new(vec![one.base.clone(), two.base.clone()]));
    let load = Load::start(&one, bases.clone()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    one.kill();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let three = two.spawn_second().await;
    bases.write().unwrap()[0] = three.base.clone();
    let restarted = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (chains, answers) = load.stop().await;

    // Only requests to the dead instance failed to connect; every answer
    // was a success (a refresh whose answer was lost is retried inside the
    // grace window and gets the same successor).
    for answer in &answers {
        let to_the_dead_one =
            answer.instance == 0 && answer.started + answer.took >= killed && answer.started < restarted;
        match answer.status {
            200 => {}
            0 if to_the_dead_one => {}
            _ => panic!("{answer:?}"),
        }
    }
    assert!(answers.iter().any(|a| a.status == 0), "the kill was never noticed");
    let late = slowest(&answers);
    assert!(late < BOUND, "a request took {late:?}");
    eprintln!(
        "drill: {} answers, {} failed connections, slowest {late:?}",
        answers.len(),
        answers.iter().filter(|a| a.status == 0).count()
    );
    every_chain_survives(&three, &chains).await;
}
