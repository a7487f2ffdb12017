//! lingua (the `lingua` crate, Apache-2.0): 75 languages from character n-gram models that are
//! compiled into the binary, so it needs no file. It is slower than fastText but better on
//! short texts (words, word pairs, short lines), where lid.176's bag of character n-grams has
//! little to go on; curate uses it alone (`detector = "lingua"`) or as the second opinion of
//! lid.176 on the texts lid.176 is unsure of (`detector = "lid176+lingua"`, see
//! [`super::Detector::Combined`]). The threshold below which lingua is asked, and its mode,
//! were chosen on a held-out fifth of the lingua test sets (`benches/benches/langid.rs` prints
//! the grid); the published figures are on the other four fifths.

use std::collections::HashMap;
use std::sync::Arc;

use ::lingua::{Language, LanguageDetector, LanguageDetectorBuilder};

use super::{Detection, UNDETERMINED};

/// Below this lid.176 probability lingua is asked (held-out choice, see the module docs: the
/// lowest threshold whose sentence accuracy reaches lingua-high's alone and whose three-set
/// average is within half a point of the best).
pub const DEFAULT_TRUST: f32 = 0.9;

use super::SECOND_OPINION_MAX_CHARS as MAX_CHARS;

/// A lingua detector over all its languages, with curate's codes.
pub struct Lingua {
    detector: LanguageDetector,
    codes: HashMap<Language, String>,
    high: bool,
}

impl Lingua {
    /// All 75 languages; `high`: lingua's high-accuracy mode (every n-gram order, slower,
    /// better on short texts), else its low-accuracy mode (trigrams only).
    pub fn new(high: bool) -> Lingua {
        let mut b = LanguageDetectorBuilder::from_all_languages();
        if !high {
            b.with_low_accuracy_mode();
        }
        let codes = Language::all()
            .into_iter()
            .map(|l| (l, l.iso_code_639_1().to_string()))
            .collect();
        Lingua {
            detector: b.build(),
            codes,
            high,
        }
    }

    /// One shared detector per mode: its models load lazily, once per process.
    pub fn shared(high: bool) -> Arc<Lingua> {
        use std::sync::OnceLock;
        static LOW: OnceLock<Arc<Lingua>> = OnceLock::new();
        static HIGH: OnceLock<Arc<Lingua>> = OnceLock::new();
        let cell = if high { &HIGH } else { &LOW };
        cell.get_or_init(|| Arc::new(Lingua::new(high))).clone()
    }

    pub fn is_high_accuracy(&self) -> bool {
        self.high
    }

    /// Every language code lingua can answer.
    pub fn languages(&self) -> Vec<String> {
        let mut v: Vec<String> = self.codes.values().cloned().collect();
        v.sort();
        v
    }

    /// The most likely language and lingua's confidence in it (its values sum to 1 over the
    /// languages); `und` with 0 when lingua has nothing to go on.
    pub fn detect(&self, text: &str) -> Detection {
        let text = match text.char_indices().nth(MAX_CHARS) {
            Some((i, _)) => &text[..i],
            None => text,
        };
        match self
            .detector
            .compute_language_confidence_values(text)
            .first()
        {
            Some(&(l, c)) if c > 0.0 => Detection {
                lang: self.codes[&l].clone(),
                score: c as f32,
            },
            _ => Detection {
                lang: UNDETERMINED.into(),
                score: 0.0,
            },
        }
    }
}
