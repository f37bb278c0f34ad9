//! End-to-end tests of Weft: real binaries, real iptables rules and real network namespaces on
//! one host. This library holds the sample apps, the two-pod mesh and the shop the tests stand
//! on.

#![forbid(unsafe_code)]

pub mod apps;
pub mod chain;
pub mod faulty;
pub mod mesh;

use std::sync::{Mutex, MutexGuard};
use weft_cli_local::shop::{Options, Shop};

pub use weft_cli_local::prerequisites_met;

/// Held by each test of a test binary while its shop runs.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A shop set up as `options` say, for `test`, and the lock that runs the shop tests of a test
/// binary one at a time: they check timings and counts that a saturated 2-core machine would
/// blur. Hold the guard until the shop is dropped. `None` where the host cannot run the tests
/// (see [`prerequisites_met`]); a set-up that fails panics, naming `test`.
pub fn shop(test: &str, options: Options) -> Option<(MutexGuard<'static, ()>, Shop)> {
    if !prerequisites_met(test) {
        return None;
    }
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let shop = Shop::start_with(options).unwrap_or_else(|e| panic!("{test}: set-up failed: {e}"));
    Some((guard, shop))
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
