//! `dedup.exact`: one document per normalized text.
//!
//! The key is the xxh3-128 hash of the shared normalized view ([`crate::Document::normalized`]:
//! lower-cased alphanumeric words joined by one space), so copies that differ only in case,
//! punctuation or spacing are one document. Documents without a word have no key. The
//! survivor is chosen by `keep` (default `first`, in input order).

use serde::Deserialize;

use super::keep::{Keep, KeepRule};
use super::keyed::KeyedDedup;
use crate::config::{check_range, ConfigError, StageArgs};
use crate::stage::Built;
use crate::stage::StageDef;

/// `[stages.exact_dedup]`, `type = "dedup.exact"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExactDedupConfig {
    /// Which copy stays: `first` (default), `oldest`, `newest`, `highest`, `lowest`.
    #[serde(default)]
    pub keep: KeepRule,
    /// The signal compared by `keep = "highest"` / `"lowest"`.
    pub keep_signal: Option<String>,
    /// Sections of the key files: tasks of the `groups` step (raise it for large crawls).
    #[serde(default = "shards")]
    pub shards: usize,
}

fn shards() -> usize {
    16
}

pub static DEF: StageDef = StageDef {
    kind: "dedup.exact",
    about: "One document per normalized text (case, punctuation and spacing ignored)",
    example: "keep = \"oldest\"",
    build,
};

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: ExactDedupConfig = args.parse()?;
    check_range("shards", cfg.shards, 1, 65536)?;
    let keep = Keep::new(cfg.keep, cfg.keep_signal)?;
    Ok(Built::Global(Box::new(KeyedDedup::new(
        args.name,
        cfg.shards,
        keep,
        Box::new(|doc| {
            let n = doc.normalized();
            (!n.is_empty()).then(|| xxhash_rust::xxh3::xxh3_128(n.as_bytes()))
        }),
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::testing::{build as build_stage, build_err, doc, run};

    #[test]
    fn keeps_one_copy_per_normalized_text() {
        let stage = build_stage(&DEF, "exact", DEF.example);
        let mut docs: Vec<_> = [
            ("a", "Hello, World!\nSecond line."),
            ("b", "hello world   second LINE"),
            ("c", "Hello world, a different page."),
            ("d", "  ...  "),
            ("e", "HELLO -- world; second line!!"),
        ]
        .iter()
        .map(|(id, t)| doc(id, "", t))
        .collect();
        for (d, t) in docs.iter_mut().zip([30, 20, 10, 5, 20]) {
            d.crawl_date = Some(t);
        }
        // 40 partitions, most of them empty, to cross several sections and the merge.
        let mut parts: Vec<Vec<_>> = (0..40).map(|_| Vec::new()).collect();
        for (i, d) in docs.into_iter().enumerate() {
            parts[i * 9].push(d);
        }
        let out = run(stage.as_ref(), parts);
        let flat: Vec<_> = out.iter().flatten().collect();
        let kept: Vec<&str> = flat
            .iter()
            .filter(|(_, o)| o.is_keep())
            .map(|(d, _)| d.id.as_str())
            .collect();
        // Oldest of {a: 30, b: 20, e: 20} is b (e ties on date but comes later).
        assert_eq!(kept, vec!["b", "c", "d"]);
        assert_eq!(flat[1].0.signals.i64("exact.cluster_size"), Some(3));
        assert_eq!(flat[3].0.signals.i64("exact.cluster_size"), Some(1));
    }

    #[test]
    fn config_errors_name_the_key() {
        assert_eq!(build_err(&DEF, "shards = 100000").key, "shards");
        assert_eq!(
            build_err(&DEF, "keep = \"first\"\nkeep_signal = \"x\"").key,
            "keep_signal"
        );
    }
}
