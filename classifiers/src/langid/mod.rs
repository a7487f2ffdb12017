//! Language identification: the built-in detector (`whichlang`, 16 languages, no model file)
//! and fastText `lid.176` models (176 languages) from a configured path, served by curate's own
//! fastText inference. Codes are ISO 639-1 where one exists (`lid.176`'s `no` is reported as
//! `nb`, Bokmål, the written standard its data is in).

pub mod stage;

use std::path::Path;
use std::sync::Arc;

use crate::error::Result;
use crate::fasttext::{FastText, Preprocess, Session};

/// One answer: a language code and a confidence in `0..=1`.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    pub lang: String,
    pub score: f32,
}

/// A language detector.
pub enum Detector {
    /// `whichlang`: 16 languages (ar de en es fr hi it ja ko nl pt ru sv tr vi zh), a linear
    /// model over byte n-grams; it reports no confidence, so its score is 1 (0 for a text
    /// without letters, reported as `und`).
    Builtin,
    /// A fastText language-ID model (`lid.176.bin`/`.ftz`): the top label and its probability.
    FastText {
        model: Arc<FastText>,
        preprocess: Preprocess,
    },
}

/// ISO 639-1 codes of whichlang's languages, in its order.
fn whichlang_code(l: whichlang::Lang) -> &'static str {
    use whichlang::Lang::*;
    match l {
        Ara => "ar",
        Cmn => "zh",
        Deu => "de",
        Eng => "en",
        Fra => "fr",
        Hin => "hi",
        Ita => "it",
        Jpn => "ja",
        Kor => "ko",
        Nld => "nl",
        Por => "pt",
        Rus => "ru",
        Spa => "es",
        Swe => "sv",
        Tur => "tr",
        Vie => "vi",
    }
}

/// The code curate reports for a `lid.176` label.
pub fn normalize_code(label: &str) -> &str {
    match label {
        "no" => "nb",
        l => l,
    }
}

/// Code for texts with nothing to identify (no letters).
pub const UNDETERMINED: &str = "und";

impl Detector {
    /// Loads a fastText LID model (case kept, whitespace collapsed, the first `max_chars`).
    pub fn fasttext(path: &Path, max_chars: usize) -> Result<Detector> {
        Ok(Detector::FastText {
            model: Arc::new(FastText::load(path)?),
            preprocess: Preprocess::cased(max_chars),
        })
    }

    /// Every language code this detector can answer.
    pub fn languages(&self) -> Vec<String> {
        match self {
            Detector::Builtin => whichlang::LANGUAGES
                .iter()
                .map(|l| whichlang_code(*l).to_string())
                .collect(),
            Detector::FastText { model, .. } => model
                .labels()
                .iter()
                .map(|l| normalize_code(l).to_string())
                .collect(),
        }
    }

    /// Detects the language of `text`.
    pub fn detect(&self, text: &str, s: &mut Session) -> Detection {
        if !text.chars().any(char::is_alphabetic) {
            return Detection {
                lang: UNDETERMINED.into(),
                score: 0.0,
            };
        }
        match self {
            Detector::Builtin => Detection {
                lang: whichlang_code(whichlang::detect_language(text)).into(),
                score: 1.0,
            },
            Detector::FastText { model, preprocess } => {
                match model.predict(text, preprocess, 1, 0.0, s).first() {
                    Some(&(p, i)) => Detection {
                        lang: normalize_code(&model.labels()[i]).to_string(),
                        score: p.min(1.0),
                    },
                    None => Detection {
                        lang: UNDETERMINED.into(),
                        score: 0.0,
                    },
                }
            }
        }
    }
}
