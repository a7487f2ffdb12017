//! How a test that lacks a component (`../shared` data, a Python package, a peer system, a
//! system tool) skips. Every skip site of the workspace goes through [`skip`], so one rule holds
//! for all of them:
//!
//! - In CI (`CI` set to anything but `false`/`0`, or `CURATE_NO_SKIP=1`) a skip is a failure:
//!   the test panics with the reason, so a run cannot pass by skipping.
//! - Elsewhere a skip is allowed but never silent: one `SKIP` line goes straight to the
//!   process's stderr (libtest captures only the `print!`/`eprint!` macros, so the line shows
//!   for passing tests too, without `--nocapture`), and one record is appended to the skip log
//!   that `.ci/run` and `scripts/test-skips` summarise.

use std::fmt::Display;
use std::io::Write;
use std::path::PathBuf;

/// True where skips are failures: `CI` is set (and not `false`/`0`), or `CURATE_NO_SKIP=1`.
pub fn strict() -> bool {
    let on = |v: &str| std::env::var(v).is_ok_and(|s| !s.is_empty() && s != "false" && s != "0");
    on("CI") || on("CURATE_NO_SKIP")
}

/// The skip log: `CURATE_SKIP_LOG`, else `curate-skips.log` in the profile folder of the
/// target dir the test binary runs from (`target/debug/deps/x` -> `target/debug/`).
pub fn skip_log() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CURATE_SKIP_LOG") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    let profile = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent()?
    } else {
        deps
    };
    Some(profile.join("curate-skips.log"))
}

/// Records that the calling test skips for `reason` (the caller then returns). In CI this
/// panics with the reason instead.
#[track_caller]
pub fn skip(reason: impl Display) {
    let test = std::thread::current()
        .name()
        .unwrap_or("?")
        .replace(['\t', '\n'], " ");
    let reason = reason.to_string().replace(['\t', '\n'], " ");
    let bin = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    // `it-0123abcd` -> `it`: the test binary as cargo names the target.
    let bin = match bin.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
        _ => bin,
    };
    if strict() {
        panic!(
            "{bin}::{test} needs a component that is missing: {reason} \
             (CI: a skip is a failure; install it, or unset CI/CURATE_NO_SKIP to skip locally)"
        );
    }
    // Unbuffered, uncaptured stderr: shows in `cargo test` output even when the test passes.
    let _ = writeln!(std::io::stderr(), "SKIP {bin}::{test}: {reason}");
    if let Some(log) = skip_log() {
        // One short line per write with O_APPEND: parallel tests do not interleave.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = f.write_all(format!("{bin}\t{test}\t{reason}\n").as_bytes());
        }
    }
}

/// [`skip`]s with a formatted reason, then returns from the calling test (or from a helper,
/// with the value given after `;`: `skip!(None; "no Python")`).
#[macro_export]
macro_rules! skip {
    ($ret:expr; $($arg:tt)+) => {{
        $crate::skip(format!($($arg)+));
        return $ret;
    }};
    ($($arg:tt)+) => {{
        $crate::skip(format!($($arg)+));
        return;
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A skip outside CI writes its record to the log; in CI it panics. One test for both (the
    /// environment is process-wide), run in a child process per mode so as not to race.
    #[test]
    fn skip_logs_outside_ci_and_fails_in_ci() {
        if let Ok(mode) = std::env::var("TESTKIT_CHILD") {
            skip(format!("probe {mode}"));
            return;
        }
        let dir = std::env::temp_dir().join(format!("testkit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("skips.log");
        let _ = std::fs::remove_file(&log);
        let exe = std::env::current_exe().unwrap();
        let run = |ci: &str| {
            std::process::Command::new(&exe)
                .args(["--exact", "tests::skip_logs_outside_ci_and_fails_in_ci"])
                .env("TESTKIT_CHILD", ci)
                .env("CI", ci)
                .env_remove("CURATE_NO_SKIP")
                .env("CURATE_SKIP_LOG", &log)
                .output()
                .unwrap()
        };
        let local = run("false");
        assert!(local.status.success());
        assert!(String::from_utf8_lossy(&local.stderr).contains("SKIP testkit::"));
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(
            logged.starts_with("testkit\ttests::skip_logs_outside_ci_and_fails_in_ci\tprobe false")
        );
        let ci = run("true");
        assert!(!ci.status.success(), "a skip must fail under CI=true");
        let both = format!(
            "{}{}",
            String::from_utf8_lossy(&ci.stdout),
            String::from_utf8_lossy(&ci.stderr)
        );
        assert!(both.contains("needs a component that is missing: probe true"));
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            logged,
            "CI skips are failures, not log lines"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
