//! The mix's pages: `report.html` next to its shards (self-contained like the run report):
//! tokens per bucket against targets, shares, repeats, sources, what selection kept and why it
//! rejected the rest, the shards, the planner's warnings, and tokens per language for the
//! buckets whose documents carry a `lang` signal; and the "Mix composition" section of the
//! run's own report, read from each mix's typed `mix_report.json`.

use std::fmt::Write as _;

use stages::Store;

use super::shards::{Layout, Manifest};
use super::MixSummary;
use crate::svg::{bars, esc, human, Bar, CSS};

/// The mixes stored in a run's `mix/` folder, by name, from their `mix_report.json` (one that
/// does not read as a [`MixSummary`] is left out).
pub fn stored_summaries(store: &dyn Store) -> Vec<(String, MixSummary)> {
    let mut paths: Vec<String> = store
        .list("mix")
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.ends_with("/mix_report.json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let s: MixSummary = serde_json::from_slice(&store.read(&p).ok()?).ok()?;
            let name = p
                .trim_end_matches("/mix_report.json")
                .trim_start_matches("mix/");
            Some((name.to_string(), s))
        })
        .collect()
}

/// The run report's "Mix composition" section: per mix, tokens per bucket against targets
/// (empty when no mix was made).
pub fn run_section(mixes: &[(String, MixSummary)]) -> String {
    let mut h = String::new();
    if mixes.is_empty() {
        return h;
    }
    let _ = write!(h, "<h2>Mix composition</h2>");
    for (name, s) in mixes {
        let r = &s.report;
        let mut bs = Vec::new();
        let mut rows = String::new();
        for b in &r.buckets {
            let (target, got) = (b.target_tokens as f64, b.tokens as f64);
            bs.push(Bar {
                label: b.bucket.clone(),
                value: target,
                inner: Some(got),
            });
            let _ = write!(
                rows,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{:.2}%</td><td>{:.2}%</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&b.bucket),
                human(target),
                human(got),
                100.0 * b.target_share,
                100.0 * b.share,
                b.documents,
                b.copies,
                b.repeated_documents,
            );
        }
        let _ = write!(h, "<h3>{}</h3><div class=\"sub\">{} tokens, {} documents, {} warnings &middot; <a href=\"mix/{}/report.html\">mix report</a></div><div class=\"card\">{}</div><table><tr><th class=\"l\">bucket</th><th>target tokens</th><th>tokens</th><th>target share</th><th>share</th><th>documents</th><th>copies</th><th>repeated documents</th></tr>{rows}</table>", esc(name), human(r.tokens as f64), r.documents, r.warnings.len(), esc(name), bars(&format!("Tokens per bucket: {name}"), "tokens", &bs, Some(("target", "achieved"))));
        // Tokens per language, where the mix counted them (largest ten per bucket).
        for b in &r.buckets {
            if b.languages.is_empty() {
                continue;
            }
            let mut ls: Vec<_> = b.languages.iter().collect();
            ls.sort_by(|x, y| y.1.tokens.cmp(&x.1.tokens).then(x.0.cmp(y.0)));
            let top: Vec<String> = ls
                .iter()
                .take(10)
                .map(|(l, c)| {
                    let share = c.tokens as f64 / b.tokens.max(1) as f64;
                    format!(
                        "{} {} ({:.1}%)",
                        esc(l),
                        human(c.tokens as f64),
                        share * 100.0
                    )
                })
                .collect();
            let _ = write!(
                h,
                "<div class=\"sub\">languages of {} ({}): {}</div>",
                esc(&b.bucket),
                ls.len(),
                top.join(", ")
            );
        }
    }
    h
}

fn counts_table(title: &str, m: &std::collections::BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return String::new();
    }
    let mut h = format!(
        "<h3>{}</h3><table><tr><th class=\"l\">stage:reason</th><th>documents</th></tr>",
        esc(title)
    );
    for (k, v) in m {
        let _ = write!(h, "<tr><td class=\"l\">{}</td><td>{v}</td></tr>", esc(k));
    }
    h.push_str("</table>");
    h
}

/// Tokens per language of each bucket (largest first), against the language's target where
/// the bucket was planned by language.
fn languages(s: &MixSummary) -> String {
    let mut h = String::new();
    for b in &s.report.buckets {
        if b.languages.is_empty() {
            continue;
        }
        let mut v: Vec<_> = b.languages.iter().collect();
        v.sort_by(|x, y| y.1.tokens.cmp(&x.1.tokens).then(x.0.cmp(y.0)));
        let planned = v.iter().any(|(_, c)| c.target_tokens.is_some());
        let bars_of: Vec<Bar> = v
            .iter()
            .take(30)
            .map(|(l, c)| Bar {
                label: if l.is_empty() {
                    "?".into()
                } else {
                    l.to_string()
                },
                value: c.target_tokens.unwrap_or(c.tokens) as f64,
                inner: Some(c.tokens as f64),
            })
            .collect();
        let _ = write!(
            h,
            "<h3>Languages of {} ({} languages{})</h3><div class=\"card\">{}</div>",
            esc(&b.bucket),
            v.len(),
            if planned { ", planned by language" } else { "" },
            bars(
                "Tokens per language (target / achieved; top 30)",
                "tokens",
                &bars_of,
                Some(("target", "achieved"))
            )
        );
        let _ = write!(h, "<table><tr><th class=\"l\">language</th><th>target tokens</th><th>tokens</th><th>share</th><th>copies</th><th>available tokens</th></tr>");
        for (l, c) in v {
            let _ = write!(
                h,
                "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{:.2}%</td><td>{}</td><td>{}</td></tr>",
                esc(if l.is_empty() { "?" } else { l }),
                c.target_tokens.map_or("-".to_string(), |t| t.to_string()),
                c.tokens,
                c.share * 100.0,
                c.documents,
                c.available_tokens
            );
        }
        h.push_str("</table>");
    }
    if !h.is_empty() {
        h.insert_str(0, "<h2>Languages</h2>");
    }
    h
}

/// Renders a mix's page.
pub fn render(s: &MixSummary, manifest: &Manifest) -> String {
    let r = &s.report;
    let mut h = String::new();
    let title = format!("curate mix: {}", s.mix);
    let _ = write!(h, "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head><body>", esc(&title));
    let _ = write!(
        h,
        "<h1>{}</h1><div class=\"sub\">tokenizer <code>{}</code> (vocabulary {}) &middot; layout {} &middot; seed {}</div>",
        esc(&title),
        esc(&s.tokenizer),
        s.vocab_size,
        match s.layout {
            Layout::PerBucket => "per_bucket",
            Layout::Mixed => "mixed",
        },
        r.seed
    );
    let _ = write!(h, "<div>");
    for (k, v) in [
        ("tokens", human(r.tokens as f64)),
        ("target tokens", human(r.target_tokens as f64)),
        ("documents", human(r.documents as f64)),
        ("copies", human(r.copies as f64)),
        ("shards", s.shards.to_string()),
        ("candidates", human(s.selection.candidates as f64)),
    ] {
        let _ = write!(h, "<span class=\"kpi\"><b>{}</b>{}</span>", esc(&v), esc(k));
    }
    let _ = write!(h, "</div>");
    for w in &r.warnings {
        let _ = write!(h, "<p class=\"warn\">warning: {}</p>", esc(w));
    }

    let _ = write!(h, "<h2>Buckets</h2>");
    let tok_bars: Vec<Bar> = r
        .buckets
        .iter()
        .map(|b| Bar {
            label: b.bucket.clone(),
            value: b.target_tokens as f64,
            inner: Some(b.tokens as f64),
        })
        .collect();
    let share_bars: Vec<Bar> = r
        .buckets
        .iter()
        .map(|b| Bar {
            label: b.bucket.clone(),
            value: b.target_share * 100.0,
            inner: Some(b.share * 100.0),
        })
        .collect();
    let _ = write!(
        h,
        "<div class=\"grid\"><div class=\"card\">{}</div><div class=\"card\">{}</div></div>",
        bars(
            "Tokens per bucket (target / achieved)",
            "tokens",
            &tok_bars,
            Some(("target", "achieved"))
        ),
        bars(
            "Share per bucket, % (target / achieved)",
            "%",
            &share_bars,
            Some(("target", "achieved"))
        )
    );
    let _ = write!(h, "<table><tr><th class=\"l\">bucket</th><th>target share</th><th>share</th><th>target tokens</th><th>tokens</th><th>documents</th><th>copies</th><th>repeated</th><th>max copies</th><th>available documents</th><th>available tokens</th><th class=\"l\">sampling</th><th>lowest quality taken</th></tr>");
    for b in &r.buckets {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{:.2}%</td><td>{:.2}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{:?}</td><td>{}</td></tr>",
            esc(&b.bucket),
            b.target_share * 100.0,
            b.share * 100.0,
            b.target_tokens,
            b.tokens,
            b.documents,
            b.copies,
            b.repeated_documents,
            b.max_copies,
            b.available_documents,
            b.available_tokens,
            b.sampling,
            b.lowest_selected_quality
                .filter(|q| q.is_finite())
                .map_or("-".to_string(), |q| format!("{q:.4}"))
        );
    }
    let _ = write!(h, "</table>");

    let _ = write!(h, "<h2>Sources</h2><table><tr><th class=\"l\">bucket</th><th class=\"l\">source</th><th>copies</th><th>tokens</th></tr>");
    for b in &r.buckets {
        for (src, c) in &b.sources {
            let _ = write!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&b.bucket),
                esc(src),
                c.documents,
                c.tokens
            );
        }
    }
    let _ = write!(h, "</table>");
    h.push_str(&languages(s));

    let sel = &s.selection;
    let _ = write!(h, "<h2>Selection</h2>");
    let funnel = vec![
        Bar {
            label: "rows in docs/".into(),
            value: sel.kept_rows as f64,
            inner: None,
        },
        Bar {
            label: "rows in dropped/".into(),
            value: sel.dropped_rows as f64,
            inner: None,
        },
        Bar {
            label: "candidates".into(),
            value: sel.candidates as f64,
            inner: Some(sel.recovered as f64),
        },
        Bar {
            label: "selected documents".into(),
            value: r.documents as f64,
            inner: None,
        },
    ];
    let _ = write!(
        h,
        "<div class=\"card\">{}</div><p>Token counts: {}. Candidates recovered from <code>dropped/</code> by relaxed thresholds: {}. Excluded by the mix's <code>where</code>: {}. Without a bucket: {}.</p>",
        bars(
            "Stored rows to selected documents (inner bar: recovered)",
            "documents",
            &funnel,
            Some(("all", "recovered"))
        ),
        esc(&sel.token_counts),
        sel.recovered,
        sel.excluded_by_where,
        sel.no_bucket
    );
    h.push_str(&counts_table(
        "Rejected by the current thresholds",
        &sel.rejected,
    ));
    h.push_str(&counts_table(
        "Dropped by the run, not recoverable",
        &sel.not_recoverable,
    ));
    h.push_str(&counts_table(
        "Would pass now, but these stages never ran for them (run them in tag mode)",
        &sel.incomplete,
    ));

    let _ = write!(h, "<h2>Shards</h2><table><tr><th class=\"l\">prefix</th><th class=\"l\">bucket</th><th>documents</th><th>tokens</th><th>bytes</th></tr>");
    for sh in &manifest.shards {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(sh.prefix.rsplit('/').next().unwrap_or(&sh.prefix)),
            esc(sh.bucket.as_deref().unwrap_or("(mixed)")),
            sh.documents,
            sh.tokens,
            sh.bin_bytes
        );
    }
    let _ = write!(
        h,
        "</table><div class=\"sub\">Megatron-LM indexed datasets ({:?} tokens), one sequence per document; see manifest.json and the .ids.jsonl beside each shard.</div>",
        manifest.dtype
    );
    let _ = writeln!(h, "</body></html>");
    h
}
