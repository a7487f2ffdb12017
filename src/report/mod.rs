//! The run report: one self-contained `report.html` (inline CSS and SVG, no scripts, no
//! network) next to a run's output.
//!
//! It shows the funnel (documents and bytes per stage), drops by stage and reason with sampled
//! examples, histograms of the numeric signals with the configured thresholds drawn on them,
//! string signals (language, labels) as bars, mix composition when a mix was made, time per
//! stage and throughput, the domains that site-level safety removed, the resolved config and
//! versions.

pub mod domains;
mod scan;

pub use scan::StoredDocs;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use stages::{Error, Result, Store};

use crate::stats::RunStats;
use crate::svg::{self, bars, esc, histogram, human, Bar};

/// What the report draws besides the stored outputs.
#[derive(Default)]
pub struct ReportInput {
    /// Thresholds per signal column (from the stages' configs).
    pub thresholds: BTreeMap<String, Vec<f64>>,
    /// Stage kinds by stage name (for captions).
    pub kinds: BTreeMap<String, String>,
    /// Examples shown per drop reason.
    pub examples_per_reason: usize,
    /// Histogram bins.
    pub bins: usize,
}

/// Builds `report.html` for a run and writes it into the store.
pub fn write(
    store: &dyn Store,
    stats: &RunStats,
    tables: Option<&StoredDocs>,
    input: &ReportInput,
) -> Result<String> {
    let html = render(store, stats, tables, input)?;
    store.put("report.html", html.as_bytes())?;
    Ok(html)
}

fn render(
    store: &dyn Store,
    stats: &RunStats,
    tables: Option<&StoredDocs>,
    input: &ReportInput,
) -> Result<String> {
    let mut h = String::new();
    header(&mut h, store, stats);
    key_figures(&mut h, stats);
    funnel(&mut h, stats, input);
    time_per_stage(&mut h, stats);
    drops(&mut h, stats, tables, input)?;
    if let Some(t) = tables {
        signals(&mut h, t, input)?;
    }
    closing(&mut h, store, input);
    Ok(h)
}

/// The page head, title and output location.
fn header(h: &mut String, store: &dyn Store, stats: &RunStats) {
    let title = format!("curate report: {}", stats.pipeline);
    let _ = write!(h, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{}</style></head><body>", esc(&title), svg::CSS);
    let _ = write!(
        h,
        "<h1>{}</h1><div class=\"sub\">curate {} &middot; output <code>{}</code></div>",
        esc(&title),
        esc(&stats.version),
        esc(&store.root())
    );
}

/// Records read, documents kept and dropped, bytes in and out, wall time.
fn key_figures(h: &mut String, stats: &RunStats) {
    let (read, written) = stats.funnel();
    let dropped: u64 = stats
        .phases
        .iter()
        .flat_map(|p| p.stages.iter())
        .filter(|s| s.name != "read" && s.name != "load")
        .map(|s| s.dropped_total())
        .sum();
    let bytes_in = stats
        .phases
        .first()
        .and_then(|p| p.stages.first())
        .map_or(0, |s| s.bytes_in);
    let bytes_out = stats
        .phases
        .iter()
        .rev()
        .find(|p| p.steps.is_empty())
        .map_or(0, |p| p.bytes_written);
    let _ = write!(h, "<div>");
    for (k, v) in [
        ("records read", human(read as f64)),
        ("documents kept", human(written as f64)),
        ("documents dropped", human(dropped as f64)),
        ("input", bytes_human(bytes_in)),
        ("output", bytes_human(bytes_out)),
        ("wall time", format!("{:.1} s", stats.wall_seconds)),
    ] {
        let _ = write!(h, "<span class=\"kpi\"><b>{}</b>{}</span>", esc(&v), esc(k));
    }
    let _ = write!(h, "</div>");
}

/// Documents and bytes per stage, and the per-stage table.
fn funnel(h: &mut String, stats: &RunStats, input: &ReportInput) {
    let _ = write!(h, "<h2>Funnel</h2>");
    let mut funnel = Vec::new();
    let mut bytes = Vec::new();
    for p in &stats.phases {
        for s in &p.stages {
            let label = format!("{} · {}", p.name, s.name);
            funnel.push(Bar {
                label: label.clone(),
                value: s.docs_in as f64,
                inner: Some(s.docs_out as f64),
            });
            bytes.push(Bar {
                label,
                value: s.bytes_in as f64 / 1e6,
                inner: Some(s.bytes_out as f64 / 1e6),
            });
        }
    }
    let _ = write!(
        h,
        "<div class=\"grid\"><div class=\"card\">{}</div><div class=\"card\">{}</div></div>",
        bars(
            "Documents per stage (in / out)",
            "documents",
            &funnel,
            Some(("in", "out"))
        ),
        bars(
            "Bytes per stage (in / out)",
            "MB",
            &bytes,
            Some(("in", "out"))
        )
    );
    let _ = write!(h, "<table><tr><th class=\"l\">phase</th><th class=\"l\">stage</th><th class=\"l\">kind</th><th>in</th><th>out</th><th>dropped</th><th>tagged</th><th>MB in</th><th>MB out</th><th>seconds</th><th>docs/s</th></tr>");
    for p in &stats.phases {
        for s in &p.stages {
            let rate = if s.seconds > 0.0 {
                s.docs_in as f64 / s.seconds
            } else {
                0.0
            };
            let tagged: u64 = s.flagged.values().sum();
            let kind = input.kinds.get(&s.name).cloned().unwrap_or_default();
            let _ = write!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td></tr>",
                esc(&p.name),
                esc(&s.name),
                esc(&kind),
                s.docs_in,
                s.docs_out,
                s.dropped_total(),
                tagged,
                s.bytes_in as f64 / 1e6,
                s.bytes_out as f64 / 1e6,
                s.seconds,
                human(rate)
            );
        }
        if !p.steps.is_empty() {
            let (sum, secs) = p.step_totals();
            let c: Vec<String> = sum.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let tasks = p.steps.len();
            let _ = write!(h, "<tr><td class=\"l\">{}</td><td class=\"l\" colspan=\"8\">global step, {tasks} task{}: {}</td><td>{:.2}</td><td></td></tr>", esc(&p.name), if tasks == 1 { "" } else { "s" }, esc(&c.join(" ")), secs);
        }
    }
    let _ = write!(h, "</table>");
}

/// Seconds per stage and global step.
fn time_per_stage(h: &mut String, stats: &RunStats) {
    let mut time = Vec::new();
    for p in &stats.phases {
        for s in &p.stages {
            time.push(Bar {
                label: format!("{} · {}", p.name, s.name),
                value: s.seconds,
                inner: None,
            });
        }
        if !p.steps.is_empty() {
            time.push(Bar {
                label: p.name.clone(),
                value: p.seconds,
                inner: None,
            });
        }
    }
    let _ = write!(h, "<h2>Time per stage</h2><div class=\"card\">{}</div><div class=\"sub\">Seconds summed over partitions (CPU-like time when partitions run in parallel).</div>", bars("Time per stage", "seconds", &time, None));
}

/// Drops by stage and reason, with sampled examples from the `dropped` table.
fn drops(
    h: &mut String,
    stats: &RunStats,
    tables: Option<&StoredDocs>,
    input: &ReportInput,
) -> Result<()> {
    let _ = write!(h, "<h2>Drops by stage and reason</h2>");
    let mut reason_bars = Vec::new();
    let mut reasons: Vec<(String, String, String, u64)> = Vec::new();
    for p in &stats.phases {
        for s in &p.stages {
            for (r, n) in &s.dropped {
                reason_bars.push(Bar {
                    label: format!("{} · {}", s.name, r),
                    value: *n as f64,
                    inner: None,
                });
                reasons.push((p.name.clone(), s.name.clone(), r.clone(), *n));
            }
            for (r, n) in &s.flagged {
                reason_bars.push(Bar {
                    label: format!("{} · {} (tagged)", s.name, r),
                    value: *n as f64,
                    inner: None,
                });
            }
        }
    }
    if reason_bars.is_empty() {
        let _ = write!(h, "<p>No document was dropped.</p>");
    } else {
        let _ = write!(
            h,
            "<div class=\"card\">{}</div>",
            bars(
                "Documents dropped by stage and reason",
                "documents",
                &reason_bars,
                None
            )
        );
    }
    if let Some(t) = tables.filter(|t| !t.dropped.is_empty()) {
        let mut examples = t.drop_examples(input.examples_per_reason.max(1))?;
        for (_, stage, reason, n) in &reasons {
            if stage == "read" || stage == "load" {
                continue;
            }
            let Some(docs) = examples.remove(&(stage.clone(), reason.clone())) else {
                continue;
            };
            let _ = write!(
                h,
                "<h3>{} &middot; {} ({} documents)</h3>",
                esc(stage),
                esc(reason),
                n
            );
            for d in docs {
                let text: String = d.text().lines().take(6).collect::<Vec<_>>().join("\n");
                let text: String = text.chars().take(700).collect();
                let prefix = format!("{stage}.");
                let sigs: Vec<String> = d
                    .signals
                    .iter()
                    .filter(|(k, _)| k.starts_with(&prefix))
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect();
                let _ = write!(h, "<div class=\"ex\"><div class=\"u\">{}</div><div class=\"sub\">{}</div><pre>{}</pre></div>", esc(if d.url.is_empty() { &d.id } else { &d.url }), esc(&sigs.join(" · ")), esc(&text));
            }
        }
    }
    Ok(())
}

/// Histograms of the numeric signals (thresholds drawn) and bars of the string signals.
fn signals(h: &mut String, t: &StoredDocs, input: &ReportInput) -> Result<()> {
    let _ = write!(h, "<h2>Signals</h2><div class=\"sub\">Kept documents in blue, dropped in orange; dashed red lines are configured thresholds.</div><div class=\"grid\">");
    for (col, card) in t.signal_cards(input.bins.max(5))?.into_iter().take(48) {
        let svg = match card {
            scan::Card::Histogram {
                n,
                lo,
                width,
                kept,
                dropped,
            } => histogram(
                &format!("{col} ({n} documents)"),
                &col,
                lo,
                width,
                &kept,
                &dropped,
                input.thresholds.get(&col).map(Vec::as_slice).unwrap_or(&[]),
            ),
            scan::Card::Values(values) => {
                let bars_: Vec<Bar> = values
                    .into_iter()
                    .map(|(label, n)| Bar {
                        label,
                        value: n as f64,
                        inner: None,
                    })
                    .collect();
                bars(
                    &format!("{col}: most frequent values"),
                    "documents",
                    &bars_,
                    None,
                )
            }
        };
        let _ = write!(h, "<div class=\"card\">{svg}</div>");
    }
    let _ = write!(h, "</div>");
    Ok(())
}

/// The domains that site-level safety removed, the mixes made from the run, the resolved
/// config and versions.
fn closing(h: &mut String, store: &dyn Store, input: &ReportInput) {
    // Domains removed whole by `safety.domains` stages.
    let domain_stages: Vec<String> = input
        .kinds
        .iter()
        .filter(|(_, k)| k.as_str() == "safety.domains")
        .map(|(n, _)| n.clone())
        .collect();
    h.push_str(&domains::section(store, &domain_stages));

    // Mixes made from this run (between markers, so that `curate mix` can replace it alone).
    h.push_str(&mix_section(store));

    // Config and versions.
    if let Ok(cfg) = store.read("config.toml") {
        let _ = write!(
            h,
            "<h2>Configuration</h2><pre>{}</pre>",
            esc(&String::from_utf8_lossy(&cfg))
        );
    }
    let _ = write!(
        h,
        "<h2>Versions</h2><table><tr><td class=\"l\">curate</td><td class=\"l\">{}</td></tr><tr><td class=\"l\">platform</td><td class=\"l\">{}-{}</td></tr></table>",
        esc(env!("CARGO_PKG_VERSION")),
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let _ = writeln!(h, "</body></html>");
}

const MIX_START: &str = "<!--curate:mixes-->";
const MIX_END: &str = "<!--/curate:mixes-->";

/// The report's section on the mixes made from the run, between its markers.
fn mix_section(store: &dyn Store) -> String {
    format!(
        "{MIX_START}{}{MIX_END}",
        crate::mix::report::run_section(&crate::mix::report::stored_summaries(store))
    )
}

/// Re-renders the run's `report.html` so that its mix section shows the mixes now stored.
/// Only that section changes: it is replaced between its markers (the rest needs queries over
/// every stored document); a report without them is rendered again whole.
pub fn refresh_after_mix(
    run: &crate::mix::StoredRun,
    cf: &crate::config::ConfigFile,
) -> Result<()> {
    if let Ok(old) = run.store.read("report.html") {
        let old = String::from_utf8_lossy(&old);
        if let (Some(a), Some(b)) = (old.find(MIX_START), old.find(MIX_END)) {
            if a < b {
                let html = format!(
                    "{}{}{}",
                    &old[..a],
                    mix_section(run.store.as_ref()),
                    &old[b + MIX_END.len()..]
                );
                run.store.put("report.html", html.as_bytes())?;
                return Ok(());
            }
        }
    }
    let Ok(b) = run.store.read("stats.json") else {
        return Ok(());
    };
    let stats: crate::stats::RunStats =
        serde_json::from_slice(&b).map_err(|e| Error::other(format!("stats.json: {e}")))?;
    let tables = StoredDocs::open(run.store.as_ref())?;
    let input = match &run.plan {
        Some(p) => input_for(p),
        None => ReportInput {
            examples_per_reason: cf.raw.report.examples_per_reason,
            bins: cf.raw.report.bins.max(1),
            ..Default::default()
        },
    };
    write(run.store.as_ref(), &stats, Some(&tables), &input)?;
    Ok(())
}

/// Report inputs from a plan: thresholds and stage kinds.
pub fn input_for(plan: &crate::config::Plan) -> ReportInput {
    let r = &plan.config.raw.report;
    let mut input = ReportInput {
        examples_per_reason: r.examples_per_reason,
        bins: r.bins.max(1),
        ..Default::default()
    };
    for s in &plan.slots {
        input.kinds.insert(s.name.clone(), s.kind.to_string());
        for (sig, v) in s.built.thresholds() {
            input.thresholds.entry(sig).or_default().push(v);
        }
    }
    input
}

/// Writes the report of a finished run (stats already merged).
pub fn write_for_run(
    plan: &crate::config::Plan,
    store: &std::sync::Arc<dyn Store>,
    stats: &RunStats,
) -> Result<()> {
    let tables = StoredDocs::open(store.as_ref())?;
    write(store.as_ref(), stats, Some(&tables), &input_for(plan))?;
    Ok(())
}

/// Bytes in the unit that keeps a few significant digits (a sample run is kilobytes).
fn bytes_human(b: u64) -> String {
    match b {
        0..=9_999 => format!("{b} B"),
        10_000..=9_999_999 => format!("{:.1} KB", b as f64 / 1e3),
        10_000_000..=9_999_999_999 => format!("{:.1} MB", b as f64 / 1e6),
        _ => format!("{:.2} GB", b as f64 / 1e9),
    }
}
