//! The domains that `safety.domains` stages removed, and why: read from each stage's
//! `work/NAME/removed_domains.json`, shown by the report and by `curate inspect --domains`.

use std::fmt::Write as _;

use stages::safety::domains::REPORT_FILE;
use stages::Store;

use crate::svg::esc;

/// Names of the run's `safety.domains` stages, from its resolved `config.toml`.
pub fn stage_names(store: &dyn Store) -> Vec<String> {
    let Ok(b) = store.read("config.toml") else {
        return Vec::new();
    };
    let Ok(t) = String::from_utf8_lossy(&b).parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(stages) = t.get("stages").and_then(|s| s.as_table()) else {
        return Vec::new();
    };
    stages
        .iter()
        .filter(|(name, v)| match v.get("type").and_then(|t| t.as_str()) {
            Some(kind) => kind == "safety.domains" || kind == "domains",
            None => name.as_str() == "domains",
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// The summary a stage wrote, if its steps ran.
pub fn load(store: &dyn Store, stage: &str) -> Option<serde_json::Value> {
    let b = store.read(&format!("work/{stage}/{REPORT_FILE}")).ok()?;
    serde_json::from_slice(&b).ok()
}

fn num(v: &serde_json::Value, k: &str) -> f64 {
    v.get(k).and_then(|x| x.as_f64()).unwrap_or(0.0)
}

/// Plain-text table of the top `limit` removed domains of one stage.
pub fn text(stage: &str, v: &serde_json::Value, limit: usize) -> String {
    let mut s = format!(
        "{stage}: {} of {} domains removed ({} of {} pages)",
        num(v, "offending_domains"),
        num(v, "domains"),
        num(v, "offending_pages"),
        num(v, "pages")
    );
    if let Some(m) = v["by_reason"].as_object() {
        for (r, x) in m {
            let _ = write!(
                s,
                "; {r}: {} domains, {} pages",
                num(x, "domains"),
                num(x, "pages")
            );
        }
    }
    let _ = writeln!(
        s,
        "\n{:<40} {:<18} {:>7} {:>9} {:>7} {:>7} {:>7}",
        "domain", "reason", "pages", "pii/1k w", "dirty", "blocked", "quality"
    );
    for d in v["top"].as_array().into_iter().flatten().take(limit) {
        let _ = writeln!(
            s,
            "{:<40} {:<18} {:>7} {:>9.2} {:>7.3} {:>7.3} {:>7.3}",
            d["domain"].as_str().unwrap_or("?"),
            d["reason"].as_str().unwrap_or("?"),
            num(d, "pages"),
            num(d, "pii_per_1k_words"),
            num(d, "dirty_share"),
            num(d, "blocklist_share"),
            num(d, "quality_share"),
        );
    }
    s
}

/// The report's section: one table per `safety.domains` stage (empty without such stages).
pub fn section(store: &dyn Store, stage_names: &[String]) -> String {
    let mut h = String::new();
    for name in stage_names {
        let Some(v) = load(store, name) else { continue };
        if h.is_empty() {
            let _ = write!(h, "<h2>Domains removed</h2>");
        }
        let mut reasons = String::new();
        if let Some(m) = v["by_reason"].as_object() {
            for (r, x) in m {
                let _ = write!(
                    reasons,
                    " &middot; {}: {} domains, {} pages",
                    esc(r),
                    num(x, "domains"),
                    num(x, "pages")
                );
            }
        }
        let _ = write!(
            h,
            "<h3>{}</h3><div class=\"sub\">{} of {} domains removed, {} of {} pages{reasons}</div>\
             <table><tr><th class=\"l\">domain</th><th class=\"l\">reason</th><th>pages</th>\
             <th>PII per 1,000 words</th><th>dirty share</th><th>blocklisted share</th><th>low-quality share</th></tr>",
            esc(name),
            num(&v, "offending_domains"),
            num(&v, "domains"),
            num(&v, "offending_pages"),
            num(&v, "pages"),
        );
        for d in v["top"].as_array().into_iter().flatten().take(25) {
            let _ = write!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{:.2}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
                esc(d["domain"].as_str().unwrap_or("?")),
                esc(d["reason"].as_str().unwrap_or("?")),
                num(d, "pages"),
                num(d, "pii_per_1k_words"),
                num(d, "dirty_share"),
                num(d, "blocklist_share"),
                num(d, "quality_share"),
            );
        }
        let _ = write!(h, "</table>");
    }
    h
}
