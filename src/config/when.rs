//! `when = "..."`: the condition under which a `classify.*` stage scores a document, so that an
//! expensive model (an ONNX transformer) sees only what the cheap stages before it leave
//! undecided (a cascade). Other documents pass the stage untouched, without its signals.
//!
//! One condition is a comparison of a signal with a constant:
//!
//! - `quality.hq between 0.2 and 0.8` (bounds included), `quality.hq not between 0.2 and 0.8`;
//! - `quality.hq < 0.5` (also `<=`, `>`, `>=`, `==`, `!=`) on numeric signals;
//! - `lang == en`, `lang != en` (or quoted, `lang == "en"`) on text signals.
//!
//! A list (`when = ["a", "b"]`) holds when every condition does. A document without the signal
//! fails the condition: a cascade scores only what the earlier stage did score.

use stages::Signals;

/// A parsed condition.
#[derive(Clone, Debug, PartialEq)]
pub enum When {
    Between {
        signal: String,
        lo: f64,
        hi: f64,
        negate: bool,
    },
    Cmp {
        signal: String,
        op: Op,
        value: f64,
    },
    Str {
        signal: String,
        value: String,
        equal: bool,
    },
    All(Vec<When>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl When {
    /// Parses one condition (see the module docs); the error says what was expected.
    pub fn parse(s: &str) -> Result<When, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let num = |w: &str| -> Result<f64, String> {
            w.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("`{w}` is not a number"))
        };
        match words.as_slice() {
            [sig, "between", lo, "and", hi] | [sig, "not", "between", lo, "and", hi] => {
                let (lo, hi) = (num(lo)?, num(hi)?);
                if lo > hi {
                    return Err(format!("between {lo} and {hi}: the lower bound is larger"));
                }
                Ok(When::Between {
                    signal: sig.to_string(),
                    lo,
                    hi,
                    negate: words[1] == "not",
                })
            }
            [sig, op, value] => {
                let op = match *op {
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    ">=" => Op::Ge,
                    "==" | "=" => Op::Eq,
                    "!=" => Op::Ne,
                    other => {
                        return Err(format!("`{other}` is not one of < <= > >= == != between"))
                    }
                };
                match num(value) {
                    Ok(v) => Ok(When::Cmp {
                        signal: sig.to_string(),
                        op,
                        value: v,
                    }),
                    Err(_) if matches!(op, Op::Eq | Op::Ne) => Ok(When::Str {
                        signal: sig.to_string(),
                        value: value.trim_matches('"').to_string(),
                        equal: op == Op::Eq,
                    }),
                    Err(e) => Err(e),
                }
            }
            _ => Err(format!(
                "`{s}`: expected `SIGNAL between LO and HI`, `SIGNAL not between LO and HI` or \
                 `SIGNAL OP VALUE` with OP one of < <= > >= == !="
            )),
        }
    }

    /// The signals the condition reads.
    pub fn signals(&self) -> Vec<&str> {
        match self {
            When::Between { signal, .. } | When::Cmp { signal, .. } | When::Str { signal, .. } => {
                vec![signal.as_str()]
            }
            When::All(v) => v.iter().flat_map(|w| w.signals()).collect(),
        }
    }

    /// Whether a document with these signals is scored.
    pub fn holds(&self, s: &Signals) -> bool {
        match self {
            When::Between {
                signal,
                lo,
                hi,
                negate,
            } => s
                .f64(signal)
                .filter(|v| !v.is_nan())
                .is_some_and(|v| (*lo <= v && v <= *hi) != *negate),
            When::Cmp { signal, op, value } => {
                s.f64(signal)
                    .filter(|v| !v.is_nan())
                    .is_some_and(|v| match op {
                        Op::Lt => v < *value,
                        Op::Le => v <= *value,
                        Op::Gt => v > *value,
                        Op::Ge => v >= *value,
                        Op::Eq => v == *value,
                        Op::Ne => v != *value,
                    })
            }
            When::Str {
                signal,
                value,
                equal,
            } => s.str(signal).is_some_and(|v| (v == value) == *equal),
            When::All(v) => v.iter().all(|w| w.holds(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_evaluates() {
        let mut s = Signals::default();
        s.set_f64("quality.hq", 0.5);
        s.set_str("lang", "en");
        let w = |t: &str| When::parse(t).unwrap();
        assert!(w("quality.hq between 0.2 and 0.8").holds(&s));
        assert!(w("quality.hq between 0.5 and 0.5").holds(&s));
        assert!(!w("quality.hq not between 0.2 and 0.8").holds(&s));
        assert!(w("quality.hq < 0.6").holds(&s) && !w("quality.hq > 0.6").holds(&s));
        assert!(w("quality.hq >= 0.5").holds(&s) && w("quality.hq <= 0.5").holds(&s));
        assert!(w("lang == en").holds(&s) && w("lang == \"en\"").holds(&s));
        assert!(!w("lang != en").holds(&s));
        // A missing signal fails, negated or not.
        assert!(!w("other between 0 and 1").holds(&s));
        assert!(!w("other not between 0 and 1").holds(&s));
        let all = When::All(vec![w("quality.hq > 0.4"), w("lang == de")]);
        assert!(!all.holds(&s));
        assert_eq!(all.signals(), ["quality.hq", "lang"]);
        for bad in [
            "quality.hq between 0.8 and 0.2",
            "quality.hq ~ 3",
            "quality.hq < high",
            "quality.hq",
            "a between x and 1",
        ] {
            assert!(When::parse(bad).is_err(), "{bad}");
        }
    }
}
