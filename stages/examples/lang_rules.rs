//! Prints the per-language rule table (`stages/src/lang_rules/table.tsv`) derived from the
//! reference text in ../shared, then (on stderr) the held-out check: each language's row
//! derived without one of its sources, and the share of that source's documents it passes.
//!
//! Run: cargo run -p stages --example lang_rules > stages/src/lang_rules/table.tsv
//! (`-- --markdown`: the same table as Markdown, for docs/heuristics.md).
//! Env: CURATE_SHARED (default ../shared beside the repository).

use std::path::PathBuf;

use stages::filter::lang_derive;
use stages::lang_rules;

fn main() {
    let shared = std::env::var_os("CURATE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let (reference, english) = match lang_derive::load_reference(&shared) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("reading the reference in {}: {e}", shared.display());
            std::process::exit(2);
        }
    };
    let table = lang_derive::derive(&reference, &english);
    if std::env::args().any(|a| a == "--markdown") {
        print_markdown(&table);
    } else {
        print!("{}", table.to_tsv());
    }
    eprintln!(
        "{} languages from {} reference documents, English medians from {} documents",
        table.rows().count(),
        reference.len(),
        english.len()
    );
    eprintln!("held out: lang\tsource\tdocs\tpass (row derived without that source)");
    let mut sum = (0usize, 0.0f64);
    for (lang, source, n, pass) in lang_derive::held_out(&reference, &english, 5) {
        eprintln!("held out: {lang}\t{source}\t{n}\t{:.1}%", 100.0 * pass);
        sum.0 += n;
        sum.1 += pass * n as f64;
    }
    eprintln!(
        "held out, all: {} documents, {:.1}% pass",
        sum.0,
        100.0 * sum.1 / sum.0.max(1) as f64
    );
    // The baseline: English reference text under the English numbers.
    let en = lang_derive::english_row();
    let mut by_source = std::collections::BTreeMap::<&str, (usize, usize)>::new();
    for r in &english {
        let e = by_source.entry(r.source.as_str()).or_default();
        e.0 += 1;
        e.1 += lang_derive::broken(&en, &r.text).is_empty() as usize;
    }
    for (s, (n, pass)) in &by_source {
        eprintln!(
            "english baseline: {s}\t{n}\t{:.1}% pass",
            100.0 * *pass as f64 / *n as f64
        );
    }
    let mut in_sample = (0usize, 0usize);
    for r in &reference {
        if let Some(row) = table.row(&r.lang) {
            in_sample.0 += 1;
            in_sample.1 += lang_derive::broken(row, &r.text).is_empty() as usize;
        }
    }
    eprintln!(
        "in sample: {} documents, {:.1}% pass",
        in_sample.0,
        100.0 * in_sample.1 as f64 / in_sample.0.max(1) as f64
    );
}

/// The table as Markdown: one row per language, one column per rule, then the stop words.
fn print_markdown(table: &lang_rules::LangTable) {
    let keys = lang_rules::KEYS;
    println!("| lang | docs | {} | stop words |", keys.join(" | "));
    println!("|---|---:|{}---|", "---:|".repeat(keys.len()));
    let en = lang_derive::english_row();
    for r in std::iter::once(&en).chain(table.rows()) {
        let vals: Vec<String> = r
            .values
            .iter()
            .map(|v| {
                if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.3}")
                }
            })
            .collect();
        let docs = if r.lang == "en" {
            "(defaults)".to_string()
        } else {
            r.docs.to_string()
        };
        println!(
            "| {} | {docs} | {} | {} |",
            r.lang,
            vals.join(" | "),
            r.stop_words.join(" ")
        );
    }
}
