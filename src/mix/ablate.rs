//! Ablations: several variants of one mix (ratios, thresholds) made side by side from the
//! same stored run, each in its own folder, with a comparison table.
//!
//! ```toml
//! pipeline = "pipeline.toml"          # relative to this file
//! # from = "out"                      # the stored run (default: the pipeline's output)
//! # output = "ablations"              # default: <run>/ablate/<grid file stem>
//! # mix = "main"                      # the mix each variant changes (default: the first)
//! set = ["mix.total_tokens=2000000"]  # overrides shared by every variant
//!
//! [[variant]]
//! name = "baseline"
//!
//! [[variant]]
//! name = "code-20"
//! set = ["mix.code=0.20", "mix.general=0.47"]
//!
//! [grid]                              # and every combination of these values
//! "stages.gopher_quality.min_words" = [50, 100]
//! "mix.sampling" = ["quality", "uniform"]
//! ```
//!
//! The table gives, per variant, tokens and documents, tokens and share per bucket, and the
//! overlap of its selected documents with every other variant's (Jaccard of doc-id sets).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{MixError, MixResult};

/// One variant: a name and its `--set` overrides.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    #[serde(default)]
    pub set: Vec<String>,
}

/// A grid file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridFile {
    /// The pipeline file, relative to the grid file.
    pub pipeline: String,
    /// The stored run (default: the pipeline's output).
    pub from: Option<String>,
    /// Where the variants' folders go (default `<run>/ablate/<grid file stem>`).
    pub output: Option<String>,
    /// The pipeline's mix that variants change (default: its first).
    pub mix: Option<String>,
    /// Overrides every variant starts from.
    #[serde(default)]
    pub set: Vec<String>,
    #[serde(default)]
    pub variant: Vec<Variant>,
    /// Dotted key -> list of values: every combination is a variant.
    #[serde(default)]
    pub grid: toml::Table,
}

/// A grid file, resolved.
#[derive(Debug)]
pub struct Grid {
    pub pipeline: PathBuf,
    pub from: Option<String>,
    pub output: Option<String>,
    pub mix: Option<String>,
    pub set: Vec<String>,
    pub variants: Vec<Variant>,
}

fn resolve_path(base: &Path, p: &str) -> String {
    if crate::config::plan::is_uri(p) || Path::new(p).is_absolute() {
        p.to_string()
    } else {
        base.join(p).to_string_lossy().into_owned()
    }
}

/// A value as written on a `--set` line.
fn set_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// A folder-safe variant name from `key=value` parts (last key segment, value).
fn auto_name(parts: &[(String, String)]) -> String {
    parts
        .iter()
        .map(|(k, v)| {
            let k = k.rsplit('.').next().unwrap_or(k);
            let v = v.trim_matches('"');
            format!("{k}-{v}")
        })
        .collect::<Vec<_>>()
        .join("_")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Grid {
    /// Reads a grid file; errors name the key.
    pub fn load(path: &Path) -> Result<Grid, MixError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| MixError::Config(format!("{}: {e}", path.display())))?;
        let g: GridFile = toml::from_str(&text)
            .map_err(|e| MixError::Config(format!("{}: {}", path.display(), e.message().trim())))?;
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut variants = g.variant.clone();
        // The grid's combinations, keys in file order.
        let axes: Vec<(String, Vec<String>)> = g
            .grid
            .iter()
            .map(|(k, v)| match v {
                toml::Value::Array(a) if !a.is_empty() => {
                    Ok((k.clone(), a.iter().map(set_value).collect()))
                }
                _ => Err(MixError::Config(format!(
                    "{}: grid.{k}: expected a non-empty list of values",
                    path.display()
                ))),
            })
            .collect::<Result<_, _>>()?;
        if !axes.is_empty() {
            let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
            for (k, vals) in &axes {
                combos = combos
                    .into_iter()
                    .flat_map(|c| {
                        vals.iter().map(move |v| {
                            let mut c = c.clone();
                            c.push((k.clone(), v.clone()));
                            c
                        })
                    })
                    .collect();
            }
            for c in combos {
                variants.push(Variant {
                    name: auto_name(&c),
                    set: c.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                });
            }
        }
        if variants.is_empty() {
            return Err(MixError::Config(format!(
                "{}: no variants: add [[variant]] sections or a [grid]",
                path.display()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for v in &variants {
            let ok = !v.name.is_empty()
                && v.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.=,".contains(c))
                && v.name != "."
                && v.name != "..";
            if !ok {
                return Err(MixError::Config(format!(
                    "{}: variant name {:?}: use letters, digits and - _ . = , (it names a folder)",
                    path.display(),
                    v.name
                )));
            }
            if !seen.insert(v.name.clone()) {
                return Err(MixError::Config(format!(
                    "{}: two variants are named {:?}",
                    path.display(),
                    v.name
                )));
            }
        }
        Ok(Grid {
            pipeline: PathBuf::from(resolve_path(base, &g.pipeline)),
            from: g.from.as_deref().map(|f| resolve_path(base, f)),
            output: g.output.as_deref().map(|o| resolve_path(base, o)),
            mix: g.mix,
            set: g.set,
            variants,
        })
    }
}

/// Jaccard similarity of two sorted, distinct key lists.
pub fn jaccard(a: &[u64], b: &[u64]) -> f64 {
    let (mut i, mut j, mut both) = (0, 0, 0u64);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = a.len() as u64 + b.len() as u64 - both;
    if union == 0 {
        1.0
    } else {
        both as f64 / union as f64
    }
}

/// One row of the comparison.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VariantRow {
    pub name: String,
    pub set: Vec<String>,
    pub folder: String,
    pub tokens: u64,
    pub documents: u64,
    pub copies: u64,
    pub candidates: u64,
    /// Bucket -> (tokens, share).
    pub buckets: BTreeMap<String, (u64, f64)>,
    pub warnings: usize,
}

/// `comparison.json`: rows and the pairwise overlap (Jaccard of selected document ids).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    pub mix: String,
    pub variants: Vec<VariantRow>,
    pub jaccard: Vec<Vec<f64>>,
}

impl Comparison {
    pub fn new(mix: &str, results: &[(Variant, MixResult)]) -> Comparison {
        let variants = results
            .iter()
            .map(|(v, r)| VariantRow {
                name: v.name.clone(),
                set: v.set.clone(),
                folder: r.location.clone(),
                tokens: r.summary.report.tokens,
                documents: r.summary.report.documents,
                copies: r.summary.report.copies,
                candidates: r.summary.selection.candidates,
                buckets: r
                    .summary
                    .report
                    .buckets
                    .iter()
                    .map(|b| (b.bucket.clone(), (b.tokens, b.share)))
                    .collect(),
                warnings: r.summary.report.warnings.len(),
            })
            .collect();
        let jaccard = results
            .iter()
            .map(|(_, a)| {
                results
                    .iter()
                    .map(|(_, b)| jaccard(&a.keys, &b.keys))
                    .collect()
            })
            .collect();
        Comparison {
            mix: mix.to_string(),
            variants,
            jaccard,
        }
    }

    /// The comparison as text tables: figures per variant, then the overlap matrix.
    pub fn to_table(&self) -> String {
        let mut buckets: Vec<&String> = self
            .variants
            .iter()
            .flat_map(|v| v.buckets.keys())
            .collect();
        buckets.sort();
        buckets.dedup();
        let w = self
            .variants
            .iter()
            .map(|v| v.name.len())
            .max()
            .unwrap_or(7)
            .max(7);
        let mut s = format!(
            "{:<w$} {:>12} {:>9} {:>9} {:>10}",
            "variant", "tokens", "docs", "copies", "candidates"
        );
        for b in &buckets {
            s.push_str(&format!(" {:>22}", format!("{b} tokens (share)")));
        }
        s.push_str(&format!(" {:>8} {:>8}\n", "J(first)", "warnings"));
        for (i, v) in self.variants.iter().enumerate() {
            s.push_str(&format!(
                "{:<w$} {:>12} {:>9} {:>9} {:>10}",
                v.name, v.tokens, v.documents, v.copies, v.candidates
            ));
            for b in &buckets {
                let cell = v.buckets.get(*b).map_or("-".to_string(), |(t, sh)| {
                    format!("{t} ({:.2}%)", sh * 100.0)
                });
                s.push_str(&format!(" {cell:>22}"));
            }
            s.push_str(&format!(" {:>8.4} {:>8}\n", self.jaccard[i][0], v.warnings));
        }
        s.push_str("\noverlap of selected documents (Jaccard of doc-id sets)\n");
        s.push_str(&format!("{:<w$}", ""));
        for v in &self.variants {
            s.push_str(&format!(" {:>w$}", v.name));
        }
        s.push('\n');
        for (i, v) in self.variants.iter().enumerate() {
            s.push_str(&format!("{:<w$}", v.name));
            for j in 0..self.variants.len() {
                s.push_str(&format!(" {:>w$.4}", self.jaccard[i][j]));
            }
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaccard_of_sorted_sets() {
        assert_eq!(jaccard(&[1, 2, 3], &[1, 2, 3]), 1.0);
        assert_eq!(jaccard(&[1, 2], &[3, 4]), 0.0);
        assert!((jaccard(&[1, 2, 3, 4], &[3, 4, 5]) - 0.4).abs() < 1e-12);
        assert_eq!(jaccard(&[], &[]), 1.0);
    }

    #[test]
    fn grid_files_expand_and_validate() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("g.toml");
        std::fs::write(
            &p,
            "pipeline = 'p.toml'\nset = ['mix.total_tokens=1000']\n[[variant]]\nname = 'base'\n[grid]\n'mix.code' = [0.1, 0.2]\n'mix.sampling' = ['quality', 'uniform']\n",
        )
        .unwrap();
        let g = Grid::load(&p).unwrap();
        assert_eq!(g.pipeline, d.path().join("p.toml"));
        let names: Vec<&str> = g.variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "base",
                "code-0.1_sampling-quality",
                "code-0.1_sampling-uniform",
                "code-0.2_sampling-quality",
                "code-0.2_sampling-uniform"
            ]
        );
        assert_eq!(
            g.variants[2].set,
            ["mix.code=0.1", "mix.sampling=\"uniform\""]
        );
        std::fs::write(&p, "pipeline = 'p.toml'\n").unwrap();
        assert!(Grid::load(&p).is_err());
        std::fs::write(&p, "pipeline = 'p.toml'\n[[variant]]\nname = 'a/b'\n").unwrap();
        assert!(Grid::load(&p).is_err());
        std::fs::write(&p, "pipeline = 'p.toml'\nbogus = 1\n").unwrap();
        assert!(Grid::load(&p).unwrap_err().to_string().contains("bogus"));
    }
}
