//! Text normalization applied before tokenization, identically when training and serving:
//! lower-case (optional), every run of Unicode whitespace collapsed to one space (so a document
//! is one fastText line), ends trimmed, and only a bounded prefix kept.

/// How a text is normalized before it reaches the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preprocess {
    /// Lower-case letters (Unicode lower-case mapping).
    pub lowercase: bool,
    /// Keep at most this many characters of the normalized text (0: no limit).
    pub max_chars: usize,
    /// Make every ASCII punctuation character a token of its own (`end.` -> `end .`).
    pub split_punct: bool,
}

/// The prefix curate's classifiers train and serve on.
pub const DEFAULT_MAX_CHARS: usize = 10_000;

impl Default for Preprocess {
    /// What `curate train fasttext` trains with and `curate classify` serves with.
    fn default() -> Self {
        Preprocess {
            lowercase: true,
            max_chars: DEFAULT_MAX_CHARS,
            split_punct: true,
        }
    }
}

impl Preprocess {
    /// Whitespace collapsed, case kept: for models trained on cased text (fastText `lid.176`).
    pub fn cased(max_chars: usize) -> Self {
        Preprocess {
            lowercase: false,
            max_chars,
            split_punct: false,
        }
    }

    /// Normalizes `text` into `out` (cleared first).
    pub fn apply(&self, text: &str, out: &mut String) {
        out.clear();
        out.reserve(text.len().min(if self.max_chars > 0 {
            self.max_chars * 4
        } else {
            usize::MAX
        }));
        let limit = if self.max_chars == 0 {
            usize::MAX
        } else {
            self.max_chars
        };
        let mut chars = 0usize;
        let mut pending_space = false;
        for c in text.chars() {
            if chars >= limit {
                break;
            }
            if c.is_whitespace() || c == '\0' {
                pending_space = !out.is_empty();
                continue;
            }
            let punct = self.split_punct && c.is_ascii_punctuation();
            if punct && !out.is_empty() && !out.ends_with(' ') {
                pending_space = true;
            }
            if pending_space {
                out.push(' ');
                chars += 1;
                pending_space = false;
                if chars >= limit {
                    break;
                }
            }
            if self.lowercase {
                if c.is_ascii() {
                    out.push(c.to_ascii_lowercase());
                } else {
                    out.extend(c.to_lowercase());
                }
            } else {
                out.push(c);
            }
            chars += 1;
            if punct {
                pending_space = true;
            }
        }
    }

    /// Normalized copy of `text`.
    pub fn normalize(&self, text: &str) -> String {
        let mut s = String::new();
        self.apply(text, &mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_lowercases_and_bounds() {
        let p = Preprocess::default();
        assert_eq!(
            p.normalize("  Hello,\n\n\tWÖRLD \u{a0}x.  "),
            "hello , wörld x ."
        );
        assert_eq!(p.normalize("f(x);"), "f ( x ) ;");
        let p = Preprocess {
            lowercase: false,
            max_chars: 7,
            split_punct: false,
        };
        assert_eq!(p.normalize("Ab  cd efgh"), "Ab cd e");
        assert_eq!(p.normalize(""), "");
        assert_eq!(Preprocess::cased(0).normalize("a\u{0}b"), "a b");
    }
}
