//! `classify.langid` (instance `[stages.langid]`): sets `lang` (ISO 639-1) and `lang_score` on
//! every document, optionally the language mix of its lines, and drops documents outside an
//! allowlist or below a confidence. Without `model` it uses curate's n-gram detector (`ngram`,
//! 75 languages, no file needed); with `model = ".../lid.176.ftz"` fastText's 176 languages,
//! and the n-gram detector on the texts whose lid.176 probability is below
//! `second_opinion_below` (`lid176+ngram`). `detector` picks another: `builtin` (`whichlang`, 16
//! languages), `lid176` alone, `lingua` / `lingua-high` (the lingua crate, 75 languages, about
//! 100x slower than `ngram`), or `lid176+lingua` / `lid176+lingua-high`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use stages::config::check_fraction;
use stages::declare::{Declare, Declared, Sig, Str, F32};
use stages::{
    Built, ConfigError, Document, Outcome, Purpose, Stage, StageArgs, StageDef, LANG_SCORE_SIGNAL,
    LANG_SIGNAL,
};

use super::lingua_rs::Lingua;
use super::ngram::NgramLid;
use super::{Detector, Second};

/// The `detector` values.
const KINDS: [&str; 9] = [
    "auto",
    "builtin",
    "lid176",
    "ngram",
    "lingua",
    "lingua-high",
    "lid176+ngram",
    "lid176+lingua",
    "lid176+lingua-high",
];
use crate::fasttext::Session;

/// `[stages.langid]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LangIdConfig {
    /// A fastText language-ID model (`lid.176.bin` or `.ftz`), relative to the config file.
    /// Without it, curate's n-gram detector (75 languages).
    pub model: Option<String>,
    /// `auto` (default: `lid176+ngram` with a model, else `ngram`), `builtin`, `lid176`,
    /// `ngram`, `lingua`, `lingua-high`, `lid176+ngram`, `lid176+lingua`, `lid176+lingua-high`.
    #[serde(default)]
    pub detector: Option<String>,
    /// With `lid176+*`: the second opinion answers when lid.176's probability is below this.
    #[serde(default)]
    pub second_opinion_below: Option<f64>,
    /// Keep only documents in these languages (drop reason `language_not_allowed`).
    pub languages: Option<Vec<String>>,
    /// Drop documents whose `lang_score` is below this (`low_language_score`).
    pub min_score: Option<f64>,
    /// Also detect each line (of at least `min_line_chars` characters) and store the language
    /// mix by characters as `<name>.line_langs`, e.g. `de:0.81,en:0.19`.
    #[serde(default)]
    pub per_line: bool,
    /// Shortest line detected on its own with `per_line`.
    #[serde(default = "min_line_chars")]
    pub min_line_chars: usize,
    /// Characters of the document given to the detector.
    #[serde(default = "max_chars")]
    pub max_chars: usize,
    /// Say `und` (undetermined) for a text with fewer letters than this, rather than guess.
    #[serde(default)]
    pub min_letters: usize,
    /// Say `und` when the detector's confidence is below this (mixed or unknown text);
    /// `lang_score` keeps the confidence.
    #[serde(default)]
    pub und_below: Option<f64>,
}

fn min_line_chars() -> usize {
    20
}
fn max_chars() -> usize {
    10_000
}

pub static DEF: StageDef = StageDef {
    kind: "classify.langid",
    about: "Language ID: lang and lang_score signals (built-in detector, or fastText lid.176 from `model`)",
    example: "languages = [\"en\", \"de\"]\nmin_score = 0.5",
    build,
};

pub struct LangId {
    name: String,
    detector: Option<Arc<Detector>>,
    per_line: bool,
    min_line_chars: usize,
    max_chars: usize,
    min_letters: usize,
    und_below: Option<f64>,
    lang: Sig<Str>,
    score: Sig<F32>,
    line_signal: Option<Sig<Str>>,
    declared: Declared,
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: LangIdConfig = args.parse()?;
    if let Some(v) = cfg.min_score {
        check_fraction("min_score", v)?;
    }
    if let Some(v) = cfg.und_below {
        check_fraction("und_below", v)?;
    }
    if cfg.max_chars == 0 {
        return Err(ConfigError::new("max_chars", "must be at least 1"));
    }
    if let Some(v) = cfg.second_opinion_below {
        check_fraction("second_opinion_below", v)?;
    }
    let path = cfg
        .model
        .as_deref()
        .map(|m| args.resolve_path("model", m))
        .transpose()?;
    let kind = match cfg.detector.as_deref().unwrap_or("auto") {
        "auto" if path.is_some() => "lid176+ngram",
        "auto" => "ngram",
        k @ ("builtin" | "lid176" | "ngram" | "lingua" | "lingua-high" | "lid176+ngram"
        | "lid176+lingua" | "lid176+lingua-high") => k,
        other => {
            return Err(ConfigError::new(
                "detector",
                format!("{other:?}: expected one of {}", KINDS.join(", ")),
            ))
        }
    };
    if kind.starts_with("lid176") && path.is_none() {
        return Err(ConfigError::new(
            "model",
            format!("detector {kind:?} needs `model`, the path of a fastText lid.176 file"),
        ));
    }
    if cfg.second_opinion_below.is_some() && !kind.starts_with("lid176+") {
        return Err(ConfigError::new(
            "second_opinion_below",
            "only for detector = \"lid176+ngram\", \"lid176+lingua\" or \"lid176+lingua-high\"",
        ));
    }
    let load = |p: &std::path::Path| -> Result<Detector, ConfigError> {
        let (second, trust) = match kind {
            "lid176" => {
                return Detector::fasttext(p, cfg.max_chars)
                    .map_err(|e| ConfigError::new("model", e.to_string()))
            }
            "lid176+ngram" => (
                Second::Ngram(NgramLid::shared()),
                super::ngram::DEFAULT_TRUST,
            ),
            _ => (
                Second::Lingua(Lingua::shared(kind.ends_with("-high"))),
                super::lingua_rs::DEFAULT_TRUST,
            ),
        };
        let trust = cfg.second_opinion_below.map_or(trust, |v| v as f32);
        Detector::combined(p, cfg.max_chars, second, trust)
            .map_err(|e| ConfigError::new("model", e.to_string()))
    };
    let detector = match (args.purpose, &path) {
        (Purpose::Select, _) => None,
        (Purpose::Run, _) if kind == "builtin" => Some(Detector::Builtin),
        (Purpose::Run, _) if kind == "ngram" => Some(Detector::Ngram(NgramLid::shared())),
        (Purpose::Run, _) if kind.starts_with("lingua") => {
            Some(Detector::Lingua(Lingua::shared(kind == "lingua-high")))
        }
        (Purpose::Run, Some(p)) => Some(load(p)?),
        (Purpose::Run, None) => unreachable!("checked above"),
    };
    if let (Some(d), Some(langs)) = (&detector, &cfg.languages) {
        let known = d.languages();
        if let Some(bad) = langs.iter().find(|l| !known.contains(l)) {
            return Err(ConfigError::new(
                "languages",
                format!(
                    "the detector does not know `{bad}`; it knows: {}",
                    known.join(" ")
                ),
            ));
        }
    }
    if cfg.languages.as_ref().is_some_and(|l| l.is_empty()) {
        return Err(ConfigError::new(
            "languages",
            "an empty allowlist drops everything",
        ));
    }
    // The language signals are the engine-wide `lang` and `lang_score`, not `NAME.*`.
    let mut d = Declare::new(args.name);
    let lang = d.signal_named(
        LANG_SIGNAL,
        "language code (ISO 639-1 where one exists; und: no letters, too short or unsure)",
    );
    let score = d.signal_named(LANG_SCORE_SIGNAL, "language-ID confidence");
    let line_signal = cfg.per_line.then(|| {
        d.signal(
            "line_langs",
            "language mix of the lines by characters (lang:fraction, best first)",
        )
    });
    d.one_of(lang, cfg.languages, "languages", "language_not_allowed");
    d.min(score, cfg.min_score, "min_score", "low_language_score");
    Ok(Built::Map(Box::new(LangId {
        lang,
        score,
        line_signal,
        declared: d.finish(),
        name: args.name.to_string(),
        detector: detector.map(Arc::new),
        per_line: cfg.per_line,
        min_line_chars: cfg.min_line_chars,
        max_chars: cfg.max_chars,
        min_letters: cfg.min_letters,
        und_below: cfg.und_below,
    })))
}

thread_local! {
    static SESSION: RefCell<Session> = RefCell::new(Session::default());
}

impl LangId {
    /// Language mix of the lines by characters, `lang:fraction` best first.
    fn line_mix(&self, d: &Detector, doc: &Document, s: &mut Session) -> String {
        let mut chars: BTreeMap<String, usize> = BTreeMap::new();
        let mut total = 0usize;
        for line in doc.line_strs() {
            let n = line.chars().filter(|c| !c.is_whitespace()).count();
            if n < self.min_line_chars {
                continue;
            }
            let lang = d.detect(line, s).lang;
            *chars.entry(lang).or_default() += n;
            total += n;
        }
        let mut v: Vec<(String, usize)> = chars.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.iter()
            .map(|(l, n)| format!("{l}:{:.2}", *n as f64 / total as f64))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Stage for LangId {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let Some(d) = &self.detector else {
            return Outcome::Keep;
        };
        SESSION.with(|s| {
            let s = &mut s.borrow_mut();
            let text = doc.text();
            let head = match text.char_indices().nth(self.max_chars) {
                Some((i, _)) => &text[..i],
                None => text,
            };
            let mut det = d.detect(head, s);
            let short = self.min_letters > 0
                && head
                    .chars()
                    .filter(|c| c.is_alphabetic())
                    .take(self.min_letters)
                    .count()
                    < self.min_letters;
            if short || self.und_below.is_some_and(|u| (det.score as f64) < u) {
                det.lang = super::UNDETERMINED.into();
            }
            let mix = self.per_line.then(|| self.line_mix(d, doc, s));
            self.lang.set(&mut doc.signals, &det.lang);
            self.score.set(&mut doc.signals, det.score as f64);
            if let (Some(sig), Some(m)) = (self.line_signal, mix) {
                sig.set(&mut doc.signals, &m);
            }
        });
        Outcome::Keep
    }
}
