//! Language identification: the built-in detector (`whichlang`, 16 languages, no model file),
//! fastText `lid.176` models (176 languages) from a configured path, served by curate's own
//! fastText inference, lingua (75 languages, n-gram models embedded in the binary), curate's own
//! scorer over lingua's models ([`ngram`], same languages, about 60x faster), and lid.176 with
//! one of the latter two as a second opinion on the texts lid.176 is unsure of. Codes
//! are ISO 639-1 where one exists (`lid.176`'s `no` is reported as `nb`, Bokmål, the written
//! standard its data is in; lingua's Bokmål and Nynorsk are `nb` and `nn` as in lid.176).

pub mod lingua_rs;
pub mod ngram;
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
    /// model over byte n-grams. It reports no confidence of its own: the score is curate's
    /// (see [`builtin_score`]); 0 for a text without letters, reported as `und`.
    Builtin,
    /// A fastText language-ID model (`lid.176.bin`/`.ftz`): the top label and its probability.
    FastText {
        model: Arc<FastText>,
        preprocess: Preprocess,
    },
    /// lingua alone (low- or high-accuracy mode): 75 languages.
    Lingua(Arc<lingua_rs::Lingua>),
    /// curate's n-gram scorer over lingua's models (see [`ngram`]): 75 languages, no file.
    Ngram(Arc<ngram::NgramLid>),
    /// lid.176 first; the second opinion answers when lid.176's probability is below `trust`.
    Combined {
        model: Arc<FastText>,
        preprocess: Preprocess,
        second: Second,
        trust: f32,
    },
}

/// The second opinion of [`Detector::Combined`].
#[derive(Clone)]
pub enum Second {
    Lingua(Arc<lingua_rs::Lingua>),
    Ngram(Arc<ngram::NgramLid>),
}

impl Second {
    fn detect(&self, text: &str) -> Detection {
        match self {
            Second::Lingua(l) => l.detect(text),
            Second::Ngram(n) => n.detect(text),
        }
    }

    fn languages(&self) -> Vec<String> {
        match self {
            Second::Lingua(l) => l.languages(),
            Second::Ngram(n) => n.languages(),
        }
    }
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

    /// lid.176 with a second opinion below `trust` (see [`lingua_rs`] and [`ngram`]).
    pub fn combined(path: &Path, max_chars: usize, second: Second, trust: f32) -> Result<Detector> {
        Ok(Detector::Combined {
            model: Arc::new(FastText::load(path)?),
            preprocess: Preprocess::cased(max_chars),
            second,
            trust,
        })
    }

    /// Every language code this detector can answer.
    pub fn languages(&self) -> Vec<String> {
        match self {
            Detector::Lingua(l) => l.languages(),
            Detector::Ngram(n) => n.languages(),
            Detector::Combined { model, second, .. } => {
                let mut v: Vec<String> = model
                    .labels()
                    .iter()
                    .map(|l| normalize_code(l).to_string())
                    .chain(second.languages())
                    .collect();
                v.sort();
                v.dedup();
                v
            }
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
            Detector::Builtin => {
                let lang = whichlang::detect_language(text);
                Detection {
                    lang: whichlang_code(lang).into(),
                    score: builtin_score(text, lang),
                }
            }
            Detector::FastText { model, preprocess } => fasttext_top(model, preprocess, text, s),
            Detector::Lingua(l) => l.detect(text),
            Detector::Ngram(n) => n.detect(text),
            Detector::Combined {
                model,
                preprocess,
                second: opinion,
                trust,
            } => {
                let first = fasttext_top(model, preprocess, text, s);
                if first.score >= *trust {
                    return first;
                }
                let second = opinion.detect(text);
                let (lang, score) = merge_second_opinion(&first, &second);
                Detection {
                    lang: lang.to_string(),
                    score,
                }
            }
        }
    }
}

/// The answer of [`Detector::Combined`] once lid.176 (`first`) was below its trust: the second
/// opinion's, unless that says `und`; the larger of the two scores when they agree.
pub fn merge_second_opinion<'a>(first: &'a Detection, second: &'a Detection) -> (&'a str, f32) {
    if second.lang == UNDETERMINED {
        (&first.lang, first.score)
    } else if second.lang == first.lang {
        (&second.lang, second.score.max(first.score))
    } else {
        (&second.lang, second.score)
    }
}

/// A second opinion reads at most this many characters of a text: a page's first thousand say
/// its language as well as the whole, and its cost grows with the length.
pub const SECOND_OPINION_MAX_CHARS: usize = 1000;

/// lid.176's top label and its probability.
fn fasttext_top(
    model: &FastText,
    preprocess: &Preprocess,
    text: &str,
    s: &mut Session,
) -> Detection {
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

/// Lines with at least this many letters vote in [`builtin_score`].
const VOTING_LINE_LETTERS: usize = 20;

/// How sure the built-in detector is of `lang` for `text`, in `0..=1`: the share of the text
/// (by letters, over its lines of 20 letters or more) whose own answer is `lang`, times a
/// length term `1 - exp(-letters / 6)`. The length term follows the detector's accuracy on the
/// lingua test sets (70% on single words of 6 to 8 letters, 85% on word pairs, 99% on
/// sentences); the agreement term is low for pages that mix languages.
pub fn builtin_score(text: &str, lang: whichlang::Lang) -> f32 {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    let length = 1.0 - (-(letters as f32) / 6.0).exp();
    let (mut agree, mut total, mut voters) = (0usize, 0usize, 0usize);
    for line in text.lines() {
        let n = line.chars().filter(|c| c.is_alphabetic()).count();
        if n < VOTING_LINE_LETTERS {
            continue;
        }
        voters += 1;
        total += n;
        if whichlang::detect_language(line) == lang {
            agree += n;
        }
    }
    let agreement = if voters < 2 {
        1.0
    } else {
        agree as f32 / total as f32
    };
    agreement * length
}
