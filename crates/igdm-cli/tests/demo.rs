//! `igdm demo` runs end to end against its embedded sandbox.

use assert_cmd::Command;

#[test]
fn demo_walks_every_step() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("igdm")
        .unwrap()
        .arg("demo")
        .env("IGDM_HOME", home.path())
        .env_remove("IGDM_ACCOUNT")
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "== 10.",
        "bot replied: ",
        "replayed: same key, same message, nothing sent twice",
        "Are we still on for Friday?",
        "replied inside the 24-hour window: sent",
        "refused: outside_window (exit code 6)",
        "refused: action_blocked",
        "reads keep working while writes are paused",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    // The demo leaves the user's home untouched.
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
}
