//! PII precision and recall on ../shared/data/pii/presidio-synth-dev.json.gz (1,017 sentences
//! with labelled spans, presidio-research's synthetic set).
//!
//! A found span is a true positive when it overlaps a labelled span of the same kind that no
//! earlier found span matched; every other found span is a false positive (whatever else the
//! sentence labels there: a street number found as a phone counts against phones). Exact-span
//! matches are reported beside. Targets, per kind: precision >= 0.95, recall >= 0.90.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use stages::safety::pii::{find_pii, PiiKind};

fn kind_of(label: &str) -> Option<PiiKind> {
    Some(match label {
        "EMAIL_ADDRESS" => PiiKind::Email,
        "PHONE_NUMBER" => PiiKind::Phone,
        "IP_ADDRESS" => PiiKind::Ip,
        "CREDIT_CARD" => PiiKind::CreditCard,
        "IBAN_CODE" => PiiKind::Iban,
        "US_SSN" => PiiKind::Ssn,
        _ => return None,
    })
}

#[derive(Default, Debug)]
struct Tally {
    gold: usize,
    found: usize,
    tp: usize,
    exact: usize,
}

/// Char offsets (as labelled) to byte offsets.
fn byte_offsets(text: &str) -> Vec<usize> {
    let mut v: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    v.push(text.len());
    v
}

#[test]
fn precision_and_recall_per_kind() {
    // CURATE_PII_SET names another set in the same format (a fresh synthetic sample, say).
    let path = std::env::var_os("CURATE_PII_SET")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/data/pii/presidio-synth-dev.json.gz")
        });
    if !path.exists() {
        testkit::skip!("{} not found", path.display())
    }
    let mut raw = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_string(&mut raw)
        .unwrap();
    let items: Vec<serde_json::Value> = serde_json::from_str(&raw).unwrap();
    assert!(items.len() > 100);
    let mut t: BTreeMap<PiiKind, Tally> = BTreeMap::new();
    for it in &items {
        let text = it["full_text"].as_str().unwrap();
        let off = byte_offsets(text);
        let mut gold: Vec<(usize, usize, PiiKind, bool)> = Vec::new();
        for s in it["spans"].as_array().unwrap() {
            if let Some(k) = kind_of(s["entity_type"].as_str().unwrap()) {
                let a = off[s["start_position"].as_u64().unwrap() as usize];
                let b = off[s["end_position"].as_u64().unwrap() as usize];
                gold.push((a, b, k, false));
                t.entry(k).or_default().gold += 1;
            }
        }
        for f in find_pii(text, &PiiKind::ALL) {
            let e = t.entry(f.kind).or_default();
            e.found += 1;
            match gold
                .iter_mut()
                .find(|g| g.2 == f.kind && !g.3 && g.0 < f.end && f.start < g.1)
            {
                Some(g) => {
                    g.3 = true;
                    e.tp += 1;
                    e.exact += (g.0 == f.start && g.1 == f.end) as usize;
                    if g.0 != f.start || g.1 != f.end {
                        println!(
                            "PARTIAL {:?}: found {:?}, labelled {:?}",
                            f.kind,
                            &text[f.start..f.end],
                            &text[g.0..g.1]
                        );
                    }
                }
                None => println!("FP {:?}: {:?} in {:?}", f.kind, &text[f.start..f.end], text),
            }
        }
        for g in gold.iter().filter(|g| !g.3) {
            println!("FN {:?}: {:?} in {:?}", g.2, &text[g.0..g.1], text);
        }
    }
    println!("| type | labelled | found | precision | recall | exact spans |");
    println!("|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    for (k, x) in &t {
        let p = if x.found > 0 {
            x.tp as f64 / x.found as f64
        } else {
            1.0
        };
        let r = if x.gold > 0 {
            x.tp as f64 / x.gold as f64
        } else {
            1.0
        };
        println!(
            "| {} | {} | {} | {p:.3} | {r:.3} | {} |",
            k.name(),
            x.gold,
            x.found,
            x.exact
        );
        if p < 0.95 || r < 0.90 {
            failures.push(format!("{}: P {p:.3} R {r:.3}", k.name()));
        }
    }
    for k in PiiKind::ALL {
        assert!(
            t.get(&k).is_some_and(|x| x.gold > 0),
            "{k:?} has no labelled spans"
        );
    }
    assert!(failures.is_empty(), "below target: {failures:?}");
}
