//! Postgres servers a test starts and owns: a cluster of its own (`initdb`
//! and `pg_ctl` from the installed binaries, on a free port, in a temporary
//! directory), a PgBouncer in front of a server, and the certificates for a
//! cluster that speaks TLS. Tests that stop a database stop only these.
//!
//! Postgres and PgBouncer refuse to run as root: under root (as in CI) they
//! run as the `postgres` user, which owns their directories.

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use tempfile::TempDir;

use crate::smtp::free_port;

/// The uid and gid to run database servers as: `postgres` under root, else ourselves.
fn server_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions; getpwnam returns null or a pointer
    // to a static record, read at once.
    unsafe {
        if libc::geteuid() != 0 {
            return None;
        }
        let entry = libc::getpwnam(c"postgres".as_ptr());
        assert!(!entry.is_null(), "running as root, and there is no postgres user to run Postgres as");
        Some(((*entry).pw_uid, (*entry).pw_gid))
    }
}

/// `program` as the server user.
fn as_server_user(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    if let Some((uid, gid)) = server_user() {
        command.uid(uid).gid(gid);
    }
    command
}

/// A temporary directory the server user owns.
fn server_dir() -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    if let Some((uid, gid)) = server_user() {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown to postgres");
    }
    dir
}

/// The newest installed Postgres's binaries (Debian keeps them out of PATH).
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        let out = Command::new("pg_config").arg("--bindir").output().expect("no Postgres server binaries found");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Postgres cluster of the test's own.
pub struct Cluster {
    dir: TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl Cluster {
    /// A cluster that takes plain connections from 127.0.0.1.
    pub fn start() -> Self {
        Self::init("", "host all all 127.0.0.1/32 trust\n")
    }

    /// A cluster that takes only TLS connections, with `certs`' server certificate.
    pub fn start_with_tls(certs: &Certs) -> Self {
        let key = certs.dir.path().join("server.key");
        let conf = format!(
            "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            certs.dir.path().join("server.crt").display(),
            key.display()
        );
        Self::init(&conf, "hostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n")
    }

    fn init(extra_conf: &str, hba: &str) -> Self {
        let dir = server_dir();
        let bin = bin_dir();
        let data = dir.path().join("data");
        run(
            as_server_user(bin.join("initdb"))
                .args(["--auth=trust", "--username=postgres", "--no-sync", "--encoding=UTF8", "-D"])
                .arg(&data),
            "initdb",
        );
        let port = free_port();
        // Durability is not under test here; a stopped cluster is shut down
        // cleanly (fast mode writes a checkpoint), so nothing is lost.
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             fsync = off\nfull_page_writes = off\nmax_connections = 100\nshared_buffers = 32MB\n{extra_conf}",
            dir.path().display()
        );
        append(&data.join("postgresql.conf"), &conf);
        std::fs::write(data.join("pg_hba.conf"), format!("local all all trust\n{hba}")).unwrap();
        let cluster = Self { dir, bin, port };
        cluster.resume();
        cluster
    }

    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut command = as_server_user(self.bin.join("pg_ctl"));
        command.arg("-D").arg(self.dir.path().join("data")).args(args);
        command
    }

    /// `postgres://postgres@127.0.0.1:<port>`, for `Options::postgres_on`.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Stops the server the way an operator restarting it does (fast shutdown:
    /// open transactions are rolled back, connections are closed).
    pub fn stop(&self) {
        run(&mut self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"]), "pg_ctl stop");
    }

    /// Starts the (stopped) server and waits until it takes connections.
    pub fn resume(&self) {
        let log = self.dir.path().join("server.log");
        let mut command = self.pg_ctl(&["start", "-w", "-t", "60", "-l"]);
        command.arg(&log).stdout(Stdio::null());
        run(&mut command, "pg_ctl start");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w"]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).expect("postgresql.conf");
    file.write_all(text.as_bytes()).unwrap();
}

/// A test CA and a server certificate it signed, for 127.0.0.1 (made with
/// the `openssl` command).
pub struct Certs {
    dir: TempDir,
}

impl Certs {
    pub fn generate() -> Self {
        let dir = server_dir();
        let path = |name: &str| dir.path().join(name);
        let openssl = |args: &[&str]| run(Command::new("openssl").current_dir(dir.path()).args(args), "openssl");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let ca = ["req", "-x509", "-days", "2", "-subj", "/CN=latchkey test CA", "-keyout", "ca.key", "-out", "ca.crt"];
        openssl(&[&ca[..], &ec].concat());
        std::fs::write(path("san.ext"), "subjectAltName = IP:127.0.0.1, DNS:localhost\n").unwrap();
        let request = ["req", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"];
        openssl(&[&request[..], &ec].concat());
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ]);
        if let Some((uid, gid)) = server_user() {
            for name in ["server.key", "server.crt", "ca.crt"] {
                std::os::unix::fs::chown(path(name), Some(uid), Some(gid)).unwrap();
            }
        }
        // Postgres takes a key file only when nobody else can read it.
        std::fs::set_permissions(path("server.key"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        Self { dir }
    }

    /// The CA certificate, for `sslrootcert=`.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }
}

/// PgBouncer (the installed one) in transaction mode in front of a server.
pub struct Bouncer {
    _dir: TempDir,
    child: Child,
    pub addr: String,
}

impl Bouncer {
    /// Every database of the server on `target_port` as user postgres,
    /// `server_connections` server connections per database.
    pub fn start(target_port: u16, server_connections: u32) -> Self {
        let dir = server_dir();
        let port = free_port();
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host=127.0.0.1 port={target_port} user=postgres\n\n[pgbouncer]\n\
                 listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\nauth_type = any\n\
                 pool_mode = transaction\ndefault_pool_size = {server_connections}\nmax_client_conn = 500\n\
                 ignore_startup_parameters = extra_float_digits\nlogfile = {}\n",
                dir.path().join("pgbouncer.log").display()
            ),
        )
        .unwrap();
        if let Some((uid, gid)) = server_user() {
            std::os::unix::fs::chown(&ini, Some(uid), Some(gid)).unwrap();
        }
        let child = as_server_user("pgbouncer")
            .arg(&ini)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting pgbouncer (Debian package pgbouncer)");
        // Held (and killed on drop) before it is known to listen.
        let bouncer = Self { _dir: dir, child, addr: format!("127.0.0.1:{port}") };
        for _ in 0..100 {
            if std::net::TcpStream::connect(&bouncer.addr).is_ok() {
                return bouncer;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("pgbouncer did not listen on {}", bouncer.addr);
    }

    /// Runs `sql` through the pooler with psql (the simple query protocol).
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .arg(format!("postgres://postgres@{}/{database}", self.addr))
            .args(["-v", "ON_ERROR_STOP=1", "-qAtc", sql])
            .output()
            .expect("psql");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
