//! The outside tools some tests run: Python packages (in virtualenvs under
//! cargo's target directory), npm packages (`npm ci` in the example's own
//! folder) and the Rust example binaries. Each is set up once, by the first
//! test that needs it; a file lock keeps parallel test processes from racing.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Command,
};

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tmp() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `f` while holding an exclusive lock named `name`.
fn locked<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let lock = File::create(tmp().join(format!("{name}.lock"))).expect("lock file");
    lock.lock().expect("locking");
    f()
}

/// Runs `cmd`, panicking with its output when it fails.
pub fn run(cmd: &mut Command, needs: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e} (these tests need {needs})"));
    assert!(
        out.status.success(),
        "{cmd:?} failed (these tests need {needs}):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The Python of a virtualenv named `name` holding the packages of
/// `requirements` (paths relative to the repository).
pub fn python(name: &str, requirements: &[&str]) -> PathBuf {
    let venv = tmp().join(format!("venv-{name}"));
    let python = venv.join("bin").join("python");
    let wanted: String = requirements.iter().map(|f| std::fs::read_to_string(repo().join(f)).unwrap()).collect();
    locked(&format!("venv-{name}"), || {
        // The requirements it was built from: a change rebuilds it.
        let ready = venv.join("ready");
        if std::fs::read_to_string(&ready).ok().as_deref() != Some(wanted.as_str()) {
            let _ = std::fs::remove_dir_all(&venv);
            run(Command::new("python3").args(["-m", "venv"]).arg(&venv), "python3");
            let mut pip = Command::new(&python);
            pip.args(["-m", "pip", "install", "-q"]);
            for file in requirements {
                pip.arg("-r").arg(repo().join(file));
            }
            run(&mut pip, "python3 and PyPI");
            std::fs::write(&ready, &wanted).unwrap();
        }
    });
    python
}

/// `npm ci` in `dir` (relative to the repository), unless its
/// `node_modules` already matches the lock file.
pub fn npm_ci(dir: &str) -> PathBuf {
    let dir = repo().join(dir);
    let name = dir.strip_prefix(repo()).unwrap().to_string_lossy().replace('/', "-");
    locked(&format!("npm-{name}"), || {
        let installed = dir.join("node_modules/.package-lock.json");
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        if modified(&installed) < modified(&dir.join("package-lock.json")) {
            run(
                Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir),
                "node, npm and the npm registry",
            );
        }
    });
    dir
}

/// The path of a binary of another workspace package, built if needed.
pub fn workspace_binary(package: &str) -> PathBuf {
    locked(&format!("cargo-{package}"), || {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run(Command::new(cargo).args(["build", "--quiet", "-p", package]).current_dir(repo()), "cargo");
    });
    // target/debug/deps/api-… → target/debug/<package>
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().join(package)
}
