//! The shared classifier data sets (../shared/data/classifiers), split as their README says:
//! quality (`hq` against web text) and topic (general / math / code / multilingual), with a
//! validation split carved out of train by file group (`int(sha1(group)[:8], 16) % 4 == 0`).
//! Web texts are not pre-split: their kept-aside test part is dropped here through
//! `curate::split`, the rule every trainer uses, so no bench trains or validates on test texts.

use std::io::Read;
use std::path::Path;

/// One labelled document.
#[derive(Clone, Debug)]
pub struct Doc {
    pub id: String,
    /// The split unit: all chunks of one source file (`id` without `#chunk`).
    pub group: String,
    pub label: String,
    pub text: String,
}

impl Doc {
    /// In the validation split (a quarter of the groups).
    pub fn is_val(&self) -> bool {
        curate::split::group_in_fold(&self.group, 4)
    }
}

/// A gzip file as text (CleanEval has a few non-UTF-8 files: decoded lossily).
fn gunzip(path: &Path) -> String {
    let mut b = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut b)
        .unwrap();
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn jsonl_docs(path: &Path, label: Option<&str>) -> Vec<Doc> {
    gunzip(path)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let id = v["id"].as_str()?.to_string();
            Some(Doc {
                group: curate::split::group(&id).to_string(),
                label: label
                    .map(str::to_string)
                    .or_else(|| v["label"].as_str().map(str::to_string))?,
                text: v["text"].as_str()?.to_string(),
                id,
            })
        })
        .collect()
}

/// Web text: the extracted WARC pages and the CleanEval gold texts (markup tags and the URL
/// header removed), without their kept-aside test split.
pub fn web_docs(shared: &Path) -> Vec<Doc> {
    let mut docs = jsonl_docs(
        &shared.join("data/corpora/warc-extracted-texts.jsonl.gz"),
        Some("web"),
    );
    let gold = shared.join("data/extraction/cleaneval-final/gold");
    let mut files: Vec<_> = std::fs::read_dir(&gold)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for f in files {
        let raw = gunzip(&f);
        let text: String = raw
            .lines()
            .filter(|l| !l.starts_with("URL:"))
            .map(|l| {
                l.replace("<p>", " ")
                    .replace("<h>", " ")
                    .replace("<l>", " ")
            })
            .collect::<Vec<_>>()
            .join("\n");
        let id = format!("cleaneval/{}", f.file_name().unwrap().to_string_lossy());
        docs.push(Doc {
            group: id.clone(),
            id,
            label: "web".into(),
            text,
        });
    }
    docs.retain(|d| !curate::split::group_is_test(&d.group));
    docs
}

/// `hq` train documents and web documents.
pub fn quality_docs(shared: &Path) -> Vec<Doc> {
    let mut docs = jsonl_docs(
        &shared.join("data/classifiers/quality-hq-train.jsonl.gz"),
        None,
    );
    docs.extend(web_docs(shared));
    docs
}

/// The four topic train files.
pub fn topic_docs(shared: &Path) -> Vec<Doc> {
    let docs: Vec<Doc> = ["general", "math", "code", "multilingual"]
        .iter()
        .flat_map(|t| {
            jsonl_docs(
                &shared.join(format!("data/classifiers/topic-{t}-train.jsonl.gz")),
                None,
            )
        })
        .collect();
    debug_assert!(docs.iter().all(|d| !curate::split::group_is_test(&d.group)));
    docs
}

/// ROC AUC of `scores` for the positives (`true`), ties counted half (Mann-Whitney U).
pub fn roc_auc(scored: &[(f32, bool)]) -> f64 {
    let mut v = scored.to_vec();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut i) = (0f64, 0usize);
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let avg = (i + j + 1) as f64 / 2.0; // ranks i+1..=j
        rank_sum += avg * v[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let pos = v.iter().filter(|x| x.1).count() as f64;
    let neg = v.len() as f64 - pos;
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Per-class (precision, recall, F1) and macro-F1 of predicted against true labels.
pub fn per_class(pairs: &[(String, String)], classes: &[String]) -> (Vec<(f64, f64, f64)>, f64) {
    let mut out = Vec::new();
    for c in classes {
        let tp = pairs.iter().filter(|(t, p)| t == c && p == c).count() as f64;
        let fp = pairs.iter().filter(|(t, p)| t != c && p == c).count() as f64;
        let fneg = pairs.iter().filter(|(t, p)| t == c && p != c).count() as f64;
        let p = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
        let r = if tp + fneg > 0.0 {
            tp / (tp + fneg)
        } else {
            0.0
        };
        let f = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        out.push((p, r, f));
    }
    let macro_f1 = out.iter().map(|x| x.2).sum::<f64>() / classes.len().max(1) as f64;
    (out, macro_f1)
}
