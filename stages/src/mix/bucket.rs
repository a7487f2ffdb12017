//! `mix.bucket`: assigns each document its mix bucket (general, math, code, multilingual, or
//! configured names) from signals that earlier stages stored: the language (`lang`,
//! `lang_score`) and topic scores (`topic.code`, `topic.math`: any `<stage>.<label>` score a
//! classifier stage writes).
//!
//! The rule, in order:
//! 1. topics listed in `any_language` (code: language ID is unreliable on source code) win when
//!    their score reaches its threshold, whatever the language;
//! 2. a document whose language is not one of `languages` (confidently: `lang_score` at least
//!    `min_lang_score`) goes to the `multilingual` bucket;
//! 3. else the best-scoring topic whose score reaches its threshold (ties: the first topic in
//!    name order);
//! 4. else the `default` bucket (general).
//!
//! The bucket is a pure function of other signals, so the stage [`derives`](Stage::derives):
//! `curate mix` recomputes it from the stored inputs with the current thresholds, and
//! `--set stages.bucket.min_score=0.7` moves documents between buckets without re-running
//! the classifiers. The stage never drops a document and does not depend on the classifier
//! crate: it reads signals by name.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{ConfigError, StageArgs};
use crate::declare::{Declare, Declared, Sig, Str, F32};
use crate::signals::Signals;
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::Document;

/// The default name of the bucket signal (str) that the mix reads.
pub const BUCKET_SIGNAL: &str = "bucket";

/// `[stages.bucket]`: how documents are assigned to mix buckets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    /// Name of the bucket signal (str) this stage writes; the score goes to `<signal>.score`.
    #[serde(default = "default_signal")]
    pub signal: String,
    /// Signal holding the document's language code.
    #[serde(default = "default_lang")]
    pub lang_signal: String,
    /// Signal holding the language-ID confidence.
    #[serde(default = "default_lang_score")]
    pub lang_score_signal: String,
    /// Languages of the main buckets; documents confidently in another language go to the
    /// `multilingual` bucket. Default `["en"]`.
    #[serde(default = "default_languages")]
    pub languages: Vec<String>,
    /// Bucket of documents in other languages; `""` turns the language rule off.
    #[serde(default = "default_multilingual")]
    pub multilingual: String,
    /// A language outside `languages` counts only when its `lang_score` is at least this
    /// (below, the document is treated as in a main language). Default 0.
    #[serde(default)]
    pub min_lang_score: f64,
    /// Topic buckets: bucket name -> score signal. Default `{ math = "topic.math", code =
    /// "topic.code" }`.
    #[serde(default = "default_topics")]
    pub topics: BTreeMap<String, String>,
    /// A topic bucket needs at least this score. Default 0.5.
    #[serde(default = "default_min_score")]
    pub min_score: f64,
    /// Per-topic thresholds that override `min_score`, e.g. `{ code = 0.6 }`.
    #[serde(default)]
    pub min_scores: BTreeMap<String, f64>,
    /// Topics assigned whatever the document's language (e.g. `["code"]`). Default none.
    #[serde(default)]
    pub any_language: Vec<String>,
    /// Bucket of everything else. Default `general`.
    #[serde(default = "default_default")]
    pub default: String,
}

fn default_signal() -> String {
    BUCKET_SIGNAL.into()
}
fn default_lang() -> String {
    crate::LANG_SIGNAL.into()
}
fn default_lang_score() -> String {
    crate::LANG_SCORE_SIGNAL.into()
}
fn default_languages() -> Vec<String> {
    vec!["en".into()]
}
fn default_multilingual() -> String {
    "multilingual".into()
}
fn default_topics() -> BTreeMap<String, String> {
    [("math", "topic.math"), ("code", "topic.code")]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}
fn default_min_score() -> f64 {
    0.5
}
fn default_default() -> String {
    "general".into()
}

pub static DEF: StageDef = StageDef {
    kind: "mix.bucket",
    about: "Mix bucket of each document (general, math, code, multilingual) from language and topic signals",
    example: "languages = [\"en\"]\nmin_score = 0.5\nany_language = [\"code\"]\n[topics]\nmath = \"topic.math\"\ncode = \"topic.code\"",
    build,
};

/// One topic bucket: its name, score signal and threshold.
struct Topic {
    bucket: String,
    signal: String,
    min: f64,
    any_language: bool,
}

pub struct Bucket {
    name: String,
    signal: Sig<Str>,
    score_signal: Sig<F32>,
    declared: Declared,
    lang_signal: String,
    lang_score_signal: String,
    languages: Vec<String>,
    multilingual: Option<String>,
    min_lang_score: f64,
    topics: Vec<Topic>,
    default: String,
}

/// A bucket name must be usable in shard file names.
fn check_bucket_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("bucket name {name:?}: use letters, digits, '_' or '-' (it names shard files)"),
        ))
    }
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    Ok(Built::Map(Box::new(Bucket::new(args.name, args.parse()?)?)))
}

impl Bucket {
    /// Validates a config into a stage named `name`.
    pub fn new(name: &str, cfg: BucketConfig) -> Result<Bucket, ConfigError> {
        if cfg.signal.is_empty() {
            return Err(ConfigError::new("signal", "empty signal name"));
        }
        check_bucket_name("default", &cfg.default)?;
        if !cfg.multilingual.is_empty() {
            check_bucket_name("multilingual", &cfg.multilingual)?;
            if cfg.multilingual == cfg.default {
                return Err(ConfigError::new(
                    "multilingual",
                    "must differ from the default bucket",
                ));
            }
        }
        if !cfg.min_lang_score.is_finite() {
            return Err(ConfigError::new(
                "min_lang_score",
                "must be a finite number",
            ));
        }
        if !cfg.min_score.is_finite() {
            return Err(ConfigError::new("min_score", "must be a finite number"));
        }
        let mut topics = Vec::new();
        for (bucket, signal) in &cfg.topics {
            let key = format!("topics.{bucket}");
            check_bucket_name(&key, bucket)?;
            if *bucket == cfg.default || *bucket == cfg.multilingual {
                return Err(ConfigError::new(
                    key,
                    "a topic bucket must differ from the default and multilingual buckets",
                ));
            }
            if signal.is_empty() {
                return Err(ConfigError::new(key, "empty signal name"));
            }
            topics.push(Topic {
                bucket: bucket.clone(),
                signal: signal.clone(),
                min: cfg.min_scores.get(bucket).copied().unwrap_or(cfg.min_score),
                any_language: cfg.any_language.contains(bucket),
            });
        }
        for (b, v) in &cfg.min_scores {
            let key = format!("min_scores.{b}");
            if !cfg.topics.contains_key(b) {
                return Err(ConfigError::new(key, "not a topic bucket (see `topics`)"));
            }
            if !v.is_finite() {
                return Err(ConfigError::new(key, "must be a finite number"));
            }
        }
        for (i, b) in cfg.any_language.iter().enumerate() {
            if !cfg.topics.contains_key(b) {
                return Err(ConfigError::new(
                    format!("any_language[{i}]"),
                    format!("{b:?} is not a topic bucket (see `topics`)"),
                ));
            }
        }
        // The bucket signal is named by the config (`bucket` by default), not by the stage.
        let mut d = Declare::new(name);
        let signal = d.signal_named(&cfg.signal, "mix bucket");
        let score_signal = d.signal_named(
            &format!("{}.score", cfg.signal),
            "score that decided the bucket (topic score, language-ID score, or 1 - best topic score)",
        );
        Ok(Bucket {
            name: name.to_string(),
            score_signal,
            signal,
            declared: d.finish(),
            lang_signal: cfg.lang_signal,
            lang_score_signal: cfg.lang_score_signal,
            languages: cfg.languages,
            multilingual: (!cfg.multilingual.is_empty()).then_some(cfg.multilingual),
            min_lang_score: cfg.min_lang_score,
            topics,
            default: cfg.default,
        })
    }

    /// The bucket of a document and the score that decided it: the topic's score, the
    /// language-ID score for multilingual, and for the default bucket one minus the best topic
    /// score (how clearly it is none of the topics).
    pub fn assign<'a>(&'a self, s: &Signals) -> (&'a str, f64) {
        let score = |t: &Topic| s.f64(&t.signal).filter(|v| !v.is_nan()).unwrap_or(0.0);
        let best = |any_language_only: bool| {
            let mut best: Option<(&Topic, f64)> = None;
            for t in &self.topics {
                if any_language_only && !t.any_language {
                    continue;
                }
                let v = score(t);
                if v >= t.min && best.is_none_or(|(_, b)| v > b) {
                    best = Some((t, v));
                }
            }
            best
        };
        if let Some((t, v)) = best(true) {
            return (&t.bucket, v);
        }
        if let Some(m) = &self.multilingual {
            if let Some(lang) = s.str(&self.lang_signal) {
                let conf = s.f64(&self.lang_score_signal);
                let other = !lang.is_empty() && !self.languages.iter().any(|l| l == lang);
                if other && conf.unwrap_or(1.0) >= self.min_lang_score {
                    return (m, conf.unwrap_or(1.0));
                }
            }
        }
        if let Some((t, v)) = best(false) {
            return (&t.bucket, v);
        }
        let top = self.topics.iter().map(score).fold(0.0f64, f64::max);
        (&self.default, 1.0 - top.clamp(0.0, 1.0))
    }

    /// Every bucket this stage can assign (default, multilingual, topics).
    pub fn buckets(&self) -> Vec<String> {
        let mut v = vec![self.default.clone()];
        v.extend(self.topics.iter().map(|t| t.bucket.clone()));
        v.extend(self.multilingual.clone());
        v
    }
}

impl Stage for Bucket {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        self.derive(&mut doc.signals);
        Outcome::Keep
    }

    fn thresholds(&self) -> Vec<(String, f64)> {
        let mut t: Vec<(String, f64)> = self
            .topics
            .iter()
            .map(|t| (t.signal.clone(), t.min))
            .collect();
        if self.multilingual.is_some() && self.min_lang_score > 0.0 {
            t.push((self.lang_score_signal.clone(), self.min_lang_score));
        }
        t
    }

    fn derives(&self) -> bool {
        true
    }

    fn derive(&self, signals: &mut Signals) {
        let (bucket, score) = self.assign(signals);
        let bucket = bucket.to_string();
        self.score_signal.set(signals, score);
        self.signal.set(signals, &bucket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn stage(toml: &str) -> Result<Bucket, ConfigError> {
        let t: toml::Table = toml.parse().unwrap();
        Bucket::new("bucket", crate::config::parse_table(&t)?)
    }

    fn sig(lang: Option<(&str, f64)>, code: f64, math: f64) -> Signals {
        let mut s = Signals::new();
        if let Some((l, c)) = lang {
            s.set_str("lang", l);
            s.set_f64("lang_score", c);
        }
        s.set_f64("topic.code", code);
        s.set_f64("topic.math", math);
        s
    }

    #[test]
    fn rules_in_order() {
        let b = stage("").unwrap();
        assert_eq!(b.assign(&sig(Some(("en", 0.9)), 0.1, 0.2)).0, "general");
        assert_eq!(b.assign(&sig(Some(("en", 0.9)), 0.8, 0.6)).0, "code");
        assert_eq!(b.assign(&sig(Some(("en", 0.9)), 0.55, 0.6)).0, "math");
        // Another language wins over topics by default...
        assert_eq!(
            b.assign(&sig(Some(("de", 0.9)), 0.9, 0.0)),
            ("multilingual", 0.9)
        );
        // ...unless the topic is marked language-independent.
        let b = stage("any_language = ['code']").unwrap();
        assert_eq!(b.assign(&sig(Some(("de", 0.9)), 0.9, 0.0)).0, "code");
        assert_eq!(
            b.assign(&sig(Some(("de", 0.9)), 0.2, 0.9)).0,
            "multilingual"
        );
        // No language signal: not multilingual.
        assert_eq!(b.assign(&sig(None, 0.0, 0.0)).0, "general");
        // Default bucket score: how clearly it is none of the topics.
        let (g, s) = b.assign(&sig(None, 0.3, 0.1));
        assert_eq!(g, "general");
        assert!((s - 0.7).abs() < 1e-9);
    }

    #[test]
    fn thresholds_and_confidence() {
        let b = stage("min_score = 0.7\nmin_lang_score = 0.65\n[min_scores]\nmath = 0.4").unwrap();
        assert_eq!(b.assign(&sig(Some(("en", 1.0)), 0.69, 0.0)).0, "general");
        assert_eq!(b.assign(&sig(Some(("en", 1.0)), 0.69, 0.41)).0, "math");
        // An unsure language guess does not make a document multilingual.
        assert_eq!(b.assign(&sig(Some(("fr", 0.5)), 0.0, 0.0)).0, "general");
        assert_eq!(
            b.assign(&sig(Some(("fr", 0.8)), 0.0, 0.0)).0,
            "multilingual"
        );
        let t = b.thresholds();
        assert!(t.contains(&("topic.code".to_string(), 0.7)));
        assert!(t.contains(&("lang_score".to_string(), 0.65)));
    }

    #[test]
    fn configured_buckets_and_signal_names() {
        let b = stage(
            "signal = 'domain'\nlang_signal = 'meta.lang'\nlanguages = ['en', 'de']\nmultilingual = ''\ndefault = 'web'\n[topics]\nlaw = 'legal.yes'\n",
        )
        .unwrap();
        let mut s = Signals::new();
        s.set_str("meta.lang", "fr");
        s.set_f64("legal.yes", 0.9);
        let mut d = Document::new("a", "x");
        d.signals = s;
        b.process(&mut d);
        assert_eq!(d.signals.str("domain"), Some("law"));
        assert_eq!(d.signals.f64("domain.score"), Some(0.9));
        assert_eq!(b.buckets(), vec!["web", "law"]);
        assert!(b.derives());
        assert_eq!(b.signals()[0].name, "domain");
    }

    #[test]
    fn bad_config_names_key() {
        let key = |t: &str| stage(t).err().unwrap().key;
        assert_eq!(key("min_sore = 1"), "min_sore");
        assert_eq!(key("default = 'a b'"), "default");
        assert_eq!(key("multilingual = 'general'"), "multilingual");
        assert_eq!(key("[min_scores]\npoetry = 0.5"), "min_scores.poetry");
        assert_eq!(key("any_language = ['prose']"), "any_language[0]");
        assert_eq!(key("[topics]\ngeneral = 'topic.general'"), "topics.general");
        assert_eq!(key("[topics]\n'a/b' = 'x'"), "topics.a/b");
    }

    #[test]
    fn example_builds() {
        let b = stage(DEF.example).unwrap();
        assert_eq!(b.topics.len(), 2);
    }
}
