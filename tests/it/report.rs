//! The HTML report opens in a real headless browser (Debian's chromium) without script errors,
//! shows its sections, and renders to a screenshot.

use std::path::Path;
use std::process::Command;

use crate::common::*;

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(str::to_string)
}

fn headless(browser: &str, profile: &Path) -> Command {
    let mut c = Command::new(browser);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    c.arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// Renders a run's report; returns (DOM text, console errors, screenshot path).
pub fn render(out: &Path) -> Option<(String, Vec<String>, std::path::PathBuf)> {
    let Some(browser) = chromium() else {
        testkit::skip!(None; "no chromium (apt-get install chromium)")
    };
    let report = out.join("report.html");
    assert!(report.exists(), "report.html written next to the output");
    let url = format!("file://{}", report.display());
    let profile = tempfile::tempdir().unwrap();
    let dom = headless(&browser, profile.path())
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let errors: Vec<String> = String::from_utf8_lossy(&dom.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    let shot = out.join("report.png");
    let s = headless(&browser, profile.path())
        .arg("--window-size=1280,3000")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        s.status.success(),
        "screenshot failed: {}",
        String::from_utf8_lossy(&s.stderr)
    );
    Some((
        String::from_utf8_lossy(&dom.stdout).into_owned(),
        errors,
        shot,
    ))
}

#[test]
fn report_renders_in_headless_chromium() {
    let d = tempfile::tempdir().unwrap();
    write_jsonl(&d.path().join("in.jsonl"), 800, 3);
    let p = pipeline(
        d.path(),
        "[pipeline]\nname = \"report-test\"\n[input]\npaths = [\"in.jsonl\"]\npartition_bytes = 30000\n[output]\npath = \"out\"\n[stages.length]\ntype = \"filter.length\"\nmin_words = 20\n[stages.lines]\ntype = \"filter.length\"\nmode = \"tag\"\nmin_lines = 5\n",
    );
    let printed = curate_ok(&["run", p.to_str().unwrap()]);
    assert!(printed.contains("report.html"));
    let out = d.path().join("out");
    let Some((dom, _)) = render_checked(
        &out,
        &[
            "Funnel",
            "Drops by stage and reason",
            "Signals",
            "Configuration",
            "too_few_words",
            "length.words",
        ],
    ) else {
        return;
    };
    // Threshold drawn on the histogram of the thresholded signal.
    assert!(
        dom.contains("threshold 20"),
        "threshold line on length.words"
    );
}

/// The run's `report.html`: self-contained (no scripts, no external resources), rendered in
/// headless chromium without console errors, holding every one of `sections`, with a
/// screenshot that has content. The rendered DOM and the screenshot's path; `None` (printed)
/// without chromium.
pub fn render_checked(out: &Path, sections: &[&str]) -> Option<(String, std::path::PathBuf)> {
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!html.contains("<script"), "self-contained, no scripts");
    assert!(!html.contains("src=\"http"), "no external resources");
    let (dom, errors, shot) = render(out)?;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    for section in sections {
        assert!(dom.contains(section), "rendered report lacks {section:?}");
    }
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(
        png.len() > 30_000,
        "screenshot has content ({} bytes)",
        png.len()
    );
    Some((dom, shot))
}
