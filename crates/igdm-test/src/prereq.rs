//! Prerequisites of tests: found, or reported as missing in one way.
//!
//! A test whose prerequisite is missing never passes silently. Under CI (`CI` set to
//! anything but `false`/`0`) or with `IGDM_REQUIRE_ALL=1` it panics with a message that
//! names what is missing and how to get it. Elsewhere it prints a loud line and appends
//! a row to the file named by `IGDM_TEST_SKIP_LOG` (`scripts/test` sets it and prints
//! the rows as the run's "skipped" summary), then the test returns.

use std::io::Write as _;
use std::path::PathBuf;
#[cfg(feature = "harness")]
use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// Whether a missing prerequisite fails the test rather than skipping it.
#[must_use]
pub fn required() -> bool {
    let set =
        |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("CI") || set("IGDM_REQUIRE_ALL")
}

/// Reports that `test` cannot run because `what` is missing (`why` says how to get it).
///
/// # Panics
/// When [`required`] holds: the test fails with that message.
#[track_caller]
pub fn missing(test: &str, what: &str, why: &str) {
    let message = format!("{test}: {what} is missing: {why}");
    assert!(
        !required(),
        "{message} (a missing prerequisite fails the run under CI or IGDM_REQUIRE_ALL=1)"
    );
    eprintln!("\n!!!!!!!! SKIPPED {message} !!!!!!!!\n");
    if let Some(path) = std::env::var_os("IGDM_TEST_SKIP_LOG") {
        let line = format!("{test}\t{what}\t{why}\n").replace(['\r'], " ");
        // O_APPEND keeps concurrent test processes' rows whole.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            eprintln!("cannot record the skip in {}: {e}", PathBuf::from(path).display());
        }
    }
}

#[cfg(feature = "harness")]
/// The Chromium the browser tests use (the one `igdm_auth::browser::find_chromium` finds,
/// `IGDM_CHROMIUM` first), or `None` after reporting it missing.
#[must_use]
#[track_caller]
pub fn chromium(test: &str) -> Option<PathBuf> {
    let found = igdm_auth::browser::find_chromium();
    if found.is_none() {
        missing(
            test,
            "Chromium",
            "install Debian's chromium (scripts/test does) or set IGDM_CHROMIUM to its path",
        );
    }
    found
}

#[cfg(feature = "harness")]
/// The PostgreSQL server named by `IGDM_TEST_DATABASE_URL`, once it answers; `None` after
/// reporting it missing (unset, or no connection within a few seconds).
pub async fn postgres(test: &str) -> Option<String> {
    let why = "run scripts/test (it starts a throwaway cluster) or set IGDM_TEST_DATABASE_URL";
    let Ok(url) = std::env::var("IGDM_TEST_DATABASE_URL") else {
        missing(test, "PostgreSQL (IGDM_TEST_DATABASE_URL is unset)", why);
        return None;
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await;
    match pool {
        Ok(pool) => {
            pool.close().await;
            Some(url)
        }
        Err(e) => {
            missing(test, &format!("PostgreSQL at IGDM_TEST_DATABASE_URL ({e})"), why);
            None
        }
    }
}

#[cfg(feature = "harness")]
/// An X virtual framebuffer display for headed browser runs, stopped on drop.
#[derive(Debug)]
pub struct Xvfb {
    child: Child,
    /// The display to set as `DISPLAY`, e.g. `:99`.
    pub display: String,
}

#[cfg(feature = "harness")]
impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(feature = "harness")]
/// Starts Xvfb on a display it picks itself; `None` after reporting it missing.
///
/// # Panics
/// When Xvfb is installed but does not start or names no display.
#[must_use]
#[track_caller]
pub fn xvfb(test: &str) -> Option<Xvfb> {
    let installed = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("Xvfb").is_file()));
    if !installed {
        missing(test, "Xvfb", "install Debian's xvfb (scripts/test does)");
        return None;
    }
    let mut child = Command::new("Xvfb")
        .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line).unwrap();
    let n = line.trim();
    assert!(
        !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()),
        "Xvfb gave no display: {line:?}"
    );
    Some(Xvfb { child, display: format!(":{n}") })
}

#[cfg(feature = "harness")]
/// A `nats-server -js` of a test's own, on a loopback port it picked
/// itself, with its JetStream storage in a directory removed on drop.
#[derive(Debug)]
pub struct Nats {
    child: Child,
    dir: PathBuf,
    /// Its client URL, `nats://127.0.0.1:PORT`.
    pub url: String,
}

#[cfg(feature = "harness")]
impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(feature = "harness")]
/// Starts a NATS server with JetStream (`IGDM_NATS_SERVER`, else
/// `nats-server` on the `PATH` or `/usr/sbin/nats-server`); `None` after
/// reporting it missing.
///
/// # Panics
/// When the server is installed but does not start or names no port.
#[must_use]
#[track_caller]
pub fn nats(test: &str) -> Option<Nats> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p).map(|d| d.join("nats-server")).find(|f| f.is_file())
    });
    let bin = std::env::var_os("IGDM_NATS_SERVER")
        .map(PathBuf::from)
        .or(on_path)
        .or_else(|| Some(PathBuf::from("/usr/sbin/nats-server")).filter(|p| p.is_file()));
    let Some(bin) = bin else {
        missing(test, "nats-server", "install Debian's nats-server (scripts/test does)");
        return None;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("igdm-nats-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for JetStream");
    let mut child = Command::new(&bin)
        .args(["-js", "-a", "127.0.0.1", "-p", "-1", "-sd"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nats-server starts");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && let Some(addr) = line.split("Listening for client connections on ").nth(1) {
                let _ = tx.send(addr.trim().to_owned());
                sent = true;
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(20)).expect("nats-server names its port");
    Some(Nats { child, dir, url: format!("nats://{addr}") })
}

/// The instagrapi release the private-API oracle tests run (`scripts/test`
/// installs it into `target/instagrapi-venv`).
pub const INSTAGRAPI_VERSION: &str = "3.2.2";

/// A Python interpreter with instagrapi [`INSTAGRAPI_VERSION`]: `IGDM_INSTAGRAPI_PYTHON`,
/// else `target/instagrapi-venv/bin/python` of this repository; `None` after
/// reporting it missing.
#[must_use]
#[track_caller]
pub fn instagrapi(test: &str) -> Option<PathBuf> {
    let python = std::env::var_os("IGDM_INSTAGRAPI_PYTHON").map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/instagrapi-venv/bin/python")
        },
        PathBuf::from,
    );
    let check = format!(
        "import instagrapi, sys; sys.exit(0 if instagrapi.__version__ == '{INSTAGRAPI_VERSION}' else 3)"
    );
    let found = std::process::Command::new(&python)
        .args(["-c", &check])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        missing(
            test,
            &format!("instagrapi {INSTAGRAPI_VERSION} ({})", python.display()),
            "run scripts/test (it installs instagrapi into target/instagrapi-venv with python3 -m venv and pip) or set IGDM_INSTAGRAPI_PYTHON",
        );
        return None;
    }
    Some(python)
}
