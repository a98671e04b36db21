//! Test support shared by the tests of every igdm crate (a dev-dependency only).
//!
//! - [`prereq`]: one place that decides whether a test's prerequisite (PostgreSQL,
//!   Chromium, Xvfb, NATS) is there. A missing one **fails** the test under CI (`CI` set) or
//!   with `IGDM_REQUIRE_ALL=1`; elsewhere the test is recorded as skipped in the file
//!   named by `IGDM_TEST_SKIP_LOG`, which `scripts/test` lists at the end of the run.
//! - [`pg`]: a fresh PostgreSQL schema per test, and stores in it.
//! - [`sandbox`]: a sandbox on an ephemeral loopback port and its control API.
//! - [`clients`]: `igdm::Client`s of the sandbox's demo accounts.
//! - [`fixtures`]: Meta's documented examples under `connectors/fixtures/`.
//!
//! All but [`prereq::required`], [`prereq::missing`] and [`bench_main`] need the
//! default `harness` feature.
//! - [`bench_main`]: a benchmark binary that is also a smoke test under `cargo test`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

#[cfg(feature = "harness")]
pub mod clients;
#[cfg(feature = "harness")]
pub mod fixtures;
#[cfg(feature = "harness")]
pub mod pg;
pub mod prereq;
#[cfg(feature = "harness")]
pub mod sandbox;

/// The `main` of a benchmark binary (`harness = false`, `test = true`): under
/// `cargo bench` (`--bench`) it runs `bench`; otherwise it is one test named `smoke`
/// that runs `smoke` through the standard test-harness protocol, so `cargo test` and
/// nextest list, filter and count it, and a panic in it fails the run.
pub fn bench_main(smoke: impl FnOnce() + Send + 'static, bench: impl FnOnce()) {
    let args = libtest_mimic::Arguments::from_args();
    if args.bench {
        bench();
        return;
    }
    let trial = libtest_mimic::Trial::test("smoke", move || {
        smoke();
        Ok(())
    });
    libtest_mimic::run(&args, vec![trial]).exit();
}
