//! Which copy survives: the keep rule shared by the URL, exact and MinHash stages.
//!
//! A collector turns each document into a `rank` (a `u64`, smaller is better) when it writes
//! its key, so that global steps pick the survivor of a group by comparing numbers, without the
//! documents. Ties go to the earlier document in input order (partition, then row), so the
//! choice is deterministic.

use serde::Deserialize;

use crate::config::ConfigError;
use crate::Document;

/// `keep = "..."`: the copy of a duplicate group that stays.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KeepRule {
    /// The first in input order.
    #[default]
    First,
    /// The earliest `crawl_date` (documents without a date rank last).
    Oldest,
    /// The latest `crawl_date` (documents without a date rank last).
    Newest,
    /// The highest value of `keep_signal` (documents without it rank last).
    Highest,
    /// The lowest value of `keep_signal` (documents without it rank last).
    Lowest,
}

/// A keep rule with its signal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keep {
    pub rule: KeepRule,
    pub signal: Option<String>,
}

impl Keep {
    /// Checks that `highest`/`lowest` name a signal and other rules do not.
    pub fn new(rule: KeepRule, signal: Option<String>) -> Result<Keep, ConfigError> {
        match (rule, &signal) {
            (KeepRule::Highest | KeepRule::Lowest, None) => Err(ConfigError::new(
                "keep_signal",
                "keep = \"highest\" or \"lowest\" needs keep_signal, e.g. \"fasttext_hq.score\"",
            )),
            (KeepRule::First | KeepRule::Oldest | KeepRule::Newest, Some(_)) => {
                Err(ConfigError::new(
                    "keep_signal",
                    "keep_signal is used only with keep = \"highest\" or \"lowest\"",
                ))
            }
            _ => Ok(Keep { rule, signal }),
        }
    }

    /// Whether ranks differ between documents (else the first copy always wins).
    pub fn uses_rank(&self) -> bool {
        self.rule != KeepRule::First
    }

    /// The document's rank: smaller survives.
    pub fn rank(&self, doc: &Document) -> u64 {
        match self.rule {
            KeepRule::First => 0,
            KeepRule::Oldest => doc.crawl_date.map_or(u64::MAX, ordered_i64),
            KeepRule::Newest => doc.crawl_date.map_or(u64::MAX, |d| !ordered_i64(d)),
            KeepRule::Highest | KeepRule::Lowest => {
                let v = self
                    .signal
                    .as_deref()
                    .and_then(|s| doc.signals.f64(s))
                    .filter(|v| !v.is_nan());
                match v {
                    None => u64::MAX,
                    Some(v) if self.rule == KeepRule::Lowest => ordered_f64(v),
                    Some(v) => !ordered_f64(v),
                }
            }
        }
    }
}

/// Maps an i64 to a u64 with the same order.
fn ordered_i64(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

/// Maps a (non-NaN) f64 to a u64 with the same order.
fn ordered_f64(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(date: Option<i64>, q: Option<f64>) -> Document {
        let mut d = Document::new("x", "t");
        d.crawl_date = date;
        if let Some(q) = q {
            d.signals.set_f64("q.score", q);
        }
        d
    }

    #[test]
    fn ranks_order_documents() {
        let newest = Keep::new(KeepRule::Newest, None).unwrap();
        let oldest = Keep::new(KeepRule::Oldest, None).unwrap();
        let (a, b, none) = (
            doc(Some(-5), None),
            doc(Some(1_700_000_000), None),
            doc(None, None),
        );
        assert!(newest.rank(&b) < newest.rank(&a));
        assert!(newest.rank(&a) < newest.rank(&none));
        assert!(oldest.rank(&a) < oldest.rank(&b));
        assert!(oldest.rank(&b) < oldest.rank(&none));
        let hi = Keep::new(KeepRule::Highest, Some("q.score".into())).unwrap();
        let lo = Keep::new(KeepRule::Lowest, Some("q.score".into())).unwrap();
        let (x, y, z) = (
            doc(None, Some(-1.5)),
            doc(None, Some(0.25)),
            doc(None, Some(f64::NAN)),
        );
        assert!(hi.rank(&y) < hi.rank(&x));
        assert!(hi.rank(&x) < hi.rank(&z));
        assert!(lo.rank(&x) < lo.rank(&y));
        assert!(lo.rank(&y) < lo.rank(&z));
        assert_eq!(
            Keep::new(KeepRule::Highest, None).unwrap_err().key,
            "keep_signal"
        );
        assert!(Keep::new(KeepRule::First, Some("q".into())).is_err());
    }
}
