//! End-to-end tests of Weft: real binaries, real iptables rules and real network namespaces on
//! one host. This library holds the sample apps and the two-pod mesh the tests stand on.

#![forbid(unsafe_code)]

pub mod apps;
pub mod chain;
pub mod faulty;
pub mod mesh;

/// Whether this host can run the end-to-end tests. In CI (`CI=true`) a missing prerequisite
/// fails the test; elsewhere the test says why it does not run and returns.
pub fn prerequisites_met(test: &str) -> bool {
    match weft_cli_local::check_prerequisites() {
        Ok(()) => true,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: e2e prerequisites missing in CI: {e}")
        }
        Err(e) => {
            eprintln!("{test}: not run here: {e}");
            false
        }
    }
}

/// Retries `$cond` until it holds or `$timeout` passes, then fails with `$msg`.
#[macro_export]
macro_rules! assert_eventually {
    ($cond:expr, $timeout:expr, $($msg:tt)+) => {{
        let deadline = std::time::Instant::now() + $timeout;
        loop {
            if $cond {
                break;
            }
            if std::time::Instant::now() >= deadline {
                panic!($($msg)+);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }};
}
