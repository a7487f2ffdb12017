//! Declare once: a stage's signals and threshold rules in one table.
//!
//! A stage builds a [`Declared`] table when it is built: each signal once (its measure name,
//! type and meaning; the full name `stage.measure` is interned once, so writing it per document
//! allocates nothing), and each threshold rule once (signal, min or max, the config value, its
//! config key, the drop reason). Everything else comes from that table: the stage's
//! [`Stage::signals`](crate::Stage::signals) (and so the Parquet schema),
//! [`Stage::reasons`](crate::Stage::reasons), [`Stage::thresholds`](crate::Stage::thresholds)
//! and [`Stage::judge`](crate::Stage::judge), through [`Stage::declared`](crate::Stage::declared).
//!
//! A stage writes its signals only through the typed handles ([`Sig`]) the table gave it, so
//! it cannot write a signal it did not declare, nor write one with another type; the registry
//! contract test (`stages/tests/contract.rs`) checks every registered stage for the same on
//! real pages.
//!
//! ```
//! use stages::declare::{count, Declare, I64};
//! use stages::Signals;
//! let mut d = Declare::new("length");
//! let chars = d.signal::<I64>("chars", "characters of text");
//! d.min(chars, count(Some(10)), "min_chars", "too_short");
//! let table = d.finish();
//! let mut s = Signals::new();
//! chars.set(&mut s, 4);
//! assert_eq!(chars.name(), "length.chars");
//! assert_eq!(table.judge(&s), Some("too_short"));
//! assert_eq!(table.thresholds(), vec![("length.chars".to_string(), 10.0)]);
//! ```

use std::borrow::Cow;
use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::{Mutex, OnceLock};

use crate::lang_rules::{LangLimits, NEUTRAL};
use crate::signals::{SignalSpec, SignalType, SignalValue, Signals};

/// A signal's storage type, as a type: what [`Sig::set`] takes and [`Sig::get`] gives.
pub trait Kind {
    const TY: SignalType;
    /// The value a stage writes.
    type In<'a>;
    /// The value a stage reads back.
    type Out<'a>;
    fn value(v: Self::In<'_>) -> SignalValue;
    fn read<'a>(s: &'a Signals, name: &str) -> Option<Self::Out<'a>>;
}

/// Marker types of [`Kind`], one per [`SignalType`].
#[derive(Clone, Copy, Debug)]
pub struct F32;
#[derive(Clone, Copy, Debug)]
pub struct F64;
#[derive(Clone, Copy, Debug)]
pub struct I64;
#[derive(Clone, Copy, Debug)]
pub struct Bool;
#[derive(Clone, Copy, Debug)]
pub struct Str;

macro_rules! kind {
    ($t:ty, $ty:ident, $in:ty, $out:ty, $val:expr, $read:ident) => {
        impl Kind for $t {
            const TY: SignalType = SignalType::$ty;
            type In<'a> = $in;
            type Out<'a> = $out;
            fn value(v: Self::In<'_>) -> SignalValue {
                $val(v)
            }
            fn read<'a>(s: &'a Signals, name: &str) -> Option<Self::Out<'a>> {
                s.$read(name)
            }
        }
    };
}
kind!(F32, F32, f64, f64, SignalValue::F64, f64);
kind!(F64, F64, f64, f64, SignalValue::F64, f64);
kind!(I64, I64, i64, i64, SignalValue::I64, i64);
kind!(Bool, Bool, bool, bool, SignalValue::Bool, bool);
kind!(
    Str,
    Str,
    &'a str,
    &'a str,
    |v: &str| SignalValue::Str(v.to_string()),
    str
);

/// Kinds a threshold rule can compare (numbers).
pub trait Numeric: Kind {}
impl Numeric for F32 {}
impl Numeric for F64 {}
impl Numeric for I64 {}

/// A declared signal of kind `K`: the only way a stage writes it.
pub struct Sig<K> {
    index: usize,
    name: &'static str,
    kind: PhantomData<K>,
}

impl<K> Clone for Sig<K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K> Copy for Sig<K> {}

impl<K> std::fmt::Debug for Sig<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl<K: Kind> Sig<K> {
    /// The full name, `stage.measure`.
    pub fn name(&self) -> &'static str {
        self.name
    }
    /// The signal's place in its table (what [`Declared::judge_by`] asks for).
    pub fn index(&self) -> usize {
        self.index
    }
    /// Writes the signal (the name is borrowed: no allocation per document).
    pub fn set(&self, s: &mut Signals, v: K::In<'_>) {
        s.set(self.name, K::value(v));
    }
    /// Reads the signal back.
    pub fn get<'a>(&self, s: &'a Signals) -> Option<K::Out<'a>> {
        K::read(s, self.name)
    }
}

/// A declared signal whose type is known at run time only ([`Declare::signal_as`]).
#[derive(Clone, Copy, Debug)]
pub struct DynSig {
    pub name: &'static str,
    pub ty: SignalType,
}

/// Which side of a threshold drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// Drop below the value.
    Min,
    /// Drop above the value.
    Max,
    /// Drop at or above the value (a count that reaches a limit).
    Reach,
    /// Drop when the (boolean) signal is true; the value is unused.
    True,
    /// Drop when the (string) signal is not one of [`Rule::allowed`] (absent: "").
    OneOf,
}

/// One threshold rule: `signal` against `value` (none: the rule is off).
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Index of the signal in the table.
    pub signal: usize,
    pub bound: Bound,
    pub value: Option<f64>,
    /// The config key that sets `value`; none for a fixed rule (a flag, or a bound that is
    /// part of the stage's definition), which is not a configured threshold.
    pub key: Option<&'static str>,
    pub reason: &'static str,
    /// A signal of exactly 0 keeps the page (a rule that exempts empty measures).
    pub zero_keeps: bool,
    /// The rule applies only when this signal (index) is at least this value (enough
    /// evidence to judge: tokens scored, matches found).
    pub only_if: Option<(usize, f64)>,
    /// The values a [`Bound::OneOf`] rule keeps.
    pub allowed: Vec<String>,
    /// A page without the signal keeps (instead of reading it as 0).
    pub absent_keeps: bool,
    /// The per-language table has a value for `key` ([`Declare::per_language`]): a page of a
    /// language with a row is judged by that value, a page of a language without one is not
    /// judged by this rule.
    pub per_lang: bool,
}

impl Rule {
    /// A signal of exactly 0 keeps the page when `yes`.
    pub fn zero_keeps(&mut self, yes: bool) -> &mut Self {
        self.zero_keeps = yes;
        self
    }

    /// A page without the signal keeps (a stage that writes it only to some pages).
    pub fn absent_keeps(&mut self) -> &mut Self {
        self.absent_keeps = true;
        self
    }

    /// The rule applies only to pages where `sig` is at least `min`.
    pub fn only_if<K: Numeric>(&mut self, sig: Sig<K>, min: f64) -> &mut Self {
        self.only_if = Some((sig.index, min));
        self
    }

    fn breaks(&self, v: f64, limit: f64) -> bool {
        if self.zero_keeps && v == 0.0 {
            return false;
        }
        match self.bound {
            Bound::Min => v < limit,
            Bound::Max => v > limit,
            Bound::Reach => v >= limit,
            Bound::True => v != 0.0,
            Bound::OneOf => false, // judged on the string (see `Declared::judge`)
        }
    }
}

/// A stage's declarations: signals, threshold rules and other drop reasons.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Declared {
    specs: Vec<SignalSpec>,
    names: Vec<&'static str>,
    rules: Vec<Rule>,
    reasons: Vec<&'static str>,
    /// The stage's `rules` signal (index) and the per-language limits it names rows of.
    lang: Option<(usize, LangLimits)>,
}

/// Builds a [`Declared`] table for one stage instance.
pub struct Declare {
    prefix: String,
    table: Declared,
}

/// Interns a signal name: each distinct name is allocated once per process, and every
/// document's signal map then borrows it.
pub fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(&n) = set.get(name) {
        return n;
    }
    let n: &'static str = Box::leak(name.to_string().into_boxed_str());
    set.insert(n);
    n
}

impl Declare {
    /// Declarations of the stage named `stage` (signals are named `stage.measure`).
    pub fn new(stage: &str) -> Self {
        Declare {
            prefix: stage.to_string(),
            table: Declared::default(),
        }
    }

    /// Declares signal `stage.measure`.
    ///
    /// # Panics
    /// When the same measure is declared twice (a bug in the stage, caught by its tests).
    pub fn signal<K: Kind>(&mut self, measure: &str, help: impl Into<Cow<'static, str>>) -> Sig<K> {
        self.signal_named(&format!("{}.{measure}", self.prefix), help)
    }

    /// Declares a signal under a full name that the config chose (not `stage.measure`).
    ///
    /// # Panics
    /// When the same name is declared twice.
    pub fn signal_named<K: Kind>(
        &mut self,
        name: &str,
        help: impl Into<Cow<'static, str>>,
    ) -> Sig<K> {
        let name = intern(name);
        assert!(
            !self.table.names.contains(&name),
            "signal {name} declared twice"
        );
        self.table.names.push(name);
        self.table.specs.push(SignalSpec::new(name, K::TY, help));
        Sig {
            index: self.table.names.len() - 1,
            name,
            kind: PhantomData,
        }
    }

    /// Declares a signal whose full name and type come from the config (fields imported
    /// from the input), not from the stage's code. `None` when that name is declared already.
    pub fn signal_as(
        &mut self,
        name: &str,
        ty: SignalType,
        help: impl Into<Cow<'static, str>>,
    ) -> Option<DynSig> {
        let name = intern(name);
        if self.table.names.contains(&name) {
            return None;
        }
        self.table.names.push(name);
        self.table.specs.push(SignalSpec::new(name, ty, help));
        Some(DynSig { name, ty })
    }

    fn rule<K: Kind>(
        &mut self,
        sig: Sig<K>,
        bound: Bound,
        value: Option<f64>,
        key: Option<&'static str>,
        reason: &'static str,
    ) -> &mut Rule {
        self.table.rules.push(Rule {
            signal: sig.index,
            bound,
            value,
            key,
            reason,
            zero_keeps: false,
            only_if: None,
            allowed: Vec::new(),
            absent_keeps: false,
            per_lang: false,
        });
        self.table.reasons.push(reason);
        self.table.rules.last_mut().expect("just pushed")
    }

    /// Drops with `reason` when `sig` is below `value` (config key `key`; `None`: off).
    pub fn min<K: Numeric, V: Into<f64>>(
        &mut self,
        sig: Sig<K>,
        value: Option<V>,
        key: &'static str,
        reason: &'static str,
    ) -> &mut Rule {
        self.rule(sig, Bound::Min, value.map(Into::into), Some(key), reason)
    }

    /// Drops with `reason` when `sig` is above `value` (config key `key`; `None`: off).
    pub fn max<K: Numeric, V: Into<f64>>(
        &mut self,
        sig: Sig<K>,
        value: Option<V>,
        key: &'static str,
        reason: &'static str,
    ) -> &mut Rule {
        self.rule(sig, Bound::Max, value.map(Into::into), Some(key), reason)
    }

    /// Drops with `reason` when `sig` reaches `value` (at or above; config key `key`;
    /// `None`: off).
    pub fn reach<K: Numeric, V: Into<f64>>(
        &mut self,
        sig: Sig<K>,
        value: Option<V>,
        key: &'static str,
        reason: &'static str,
    ) -> &mut Rule {
        self.rule(sig, Bound::Reach, value.map(Into::into), Some(key), reason)
    }

    /// A fixed rule (no config key, not a drawn threshold): drops with `reason` when `sig`
    /// is on the dropping side of `value`.
    pub fn fixed<K: Numeric>(
        &mut self,
        sig: Sig<K>,
        bound: Bound,
        value: f64,
        reason: &'static str,
    ) -> &mut Rule {
        self.rule(sig, bound, Some(value), None, reason)
    }

    /// Drops with `reason` when `sig` is not one of `allowed` (config key `key`; `None`: off).
    pub fn one_of(
        &mut self,
        sig: Sig<Str>,
        allowed: Option<Vec<String>>,
        key: &'static str,
        reason: &'static str,
    ) -> &mut Rule {
        let on = allowed.as_ref().map(|_| 1.0);
        let r = self.rule(sig, Bound::OneOf, on, Some(key), reason);
        r.allowed = allowed.unwrap_or_default();
        r
    }

    /// Drops with `reason` when the flag `sig` is true.
    pub fn flag(&mut self, sig: Sig<Bool>, reason: &'static str) -> &mut Rule {
        self.rule(sig, Bound::True, Some(1.0), None, reason)
    }

    /// Declares a drop reason that is not a threshold rule (a drop in `process`, e.g. a page
    /// that does not parse).
    /// Reasons keep their declaration order, rules' and others' interleaved.
    pub fn reason(&mut self, reason: &'static str) {
        self.table.reasons.push(reason);
    }

    /// The stage's name, the prefix of its signals.
    pub fn stage(&self) -> &str {
        &self.prefix
    }

    /// Rules per language: the rules whose config key is per language in `limits` (declared
    /// before or after this call) are judged by the row that the string signal `rules` names
    /// (the stage writes the label of its scope there); `"neutral"`, or a row without the
    /// key, turns them off; a label without a row (`en`, `default`) keeps the configured value.
    pub fn per_language(&mut self, rules: Sig<Str>, limits: LangLimits) {
        self.table.lang = Some((rules.index, limits));
    }

    pub fn finish(mut self) -> Declared {
        if let Some((_, limits)) = &self.table.lang {
            for r in &mut self.table.rules {
                r.per_lang = r.key.is_some_and(|k| limits.is_per_language(k));
            }
        }
        self.table
    }
}

/// Integers (counts) in a u64 config value convert to the f64 a rule compares in; counts stay
/// exact up to 2^53.
pub fn count(v: Option<u64>) -> Option<f64> {
    v.map(|v| v as f64)
}

impl Declared {
    /// The declared signals (the stage's output columns).
    pub fn signals(&self) -> Vec<SignalSpec> {
        self.specs.clone()
    }

    /// Whether `name` is one of the declared signals.
    pub fn declares(&self, name: &str) -> bool {
        self.names.contains(&name)
    }

    /// The rules, in the order [`Declared::judge`] applies them.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The declared signals' full names, in declaration order.
    pub fn signal_names(&self) -> &[&'static str] {
        &self.names
    }

    /// The full name of a rule's signal.
    pub fn signal_name(&self, rule: &Rule) -> &'static str {
        self.names[rule.signal]
    }

    /// Every drop reason, once each, in declaration order (rules' and others').
    pub fn reasons(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for &r in &self.reasons {
            if !out.contains(&r) {
                out.push(r);
            }
        }
        out
    }

    /// The configured thresholds, `(signal, value)`, in rule order (fixed rules and flags
    /// are not configured thresholds).
    pub fn thresholds(&self) -> Vec<(String, f64)> {
        self.rules
            .iter()
            .filter(|r| r.key.is_some() && r.bound != Bound::OneOf)
            .filter_map(|r| r.value.map(|v| (self.names[r.signal].to_string(), v)))
            .collect()
    }

    /// The drop reason of the first rule (in declaration order) that the signals break; a
    /// signal that is absent reads as 0. `None`: every rule holds.
    pub fn judge(&self, s: &Signals) -> Option<&'static str> {
        self.judge_with(
            |i| s.f64(self.names[i]),
            |i| Some(s.str(self.names[i]).unwrap_or("")),
        )
    }

    /// [`Declared::judge`] over numbers that are not (yet) signals: `get(i)` gives the value
    /// of the `i`-th declared signal (see [`Sig::index`]); string rules are not checked.
    pub fn judge_by(&self, get: impl Fn(usize) -> f64) -> Option<&'static str> {
        self.judge_with(|i| Some(get(i)), |_| None)
    }

    fn judge_with<'a>(
        &self,
        get: impl Fn(usize) -> Option<f64>,
        text: impl Fn(usize) -> Option<&'a str>,
    ) -> Option<&'static str> {
        // The row of the page's language: `None` keeps the configured values, `Some(None)` is
        // a language without a row (its per-language rules are off).
        let row = self.lang.as_ref().and_then(|(i, limits)| match text(*i) {
            Some(NEUTRAL) => Some(None),
            Some(l) => limits.row(l).map(Some),
            None => None,
        });
        for r in &self.rules {
            let Some(mut limit) = r.value else { continue };
            if r.per_lang {
                match (row, r.key) {
                    (Some(None), _) => continue,
                    (Some(Some(lr)), Some(k)) => match lr.get(k) {
                        Some(&v) => limit = v,
                        None => continue,
                    },
                    _ => {}
                }
            }
            if r.bound == Bound::OneOf {
                match text(r.signal) {
                    Some(v) if !r.allowed.iter().any(|a| a == v) => return Some(r.reason),
                    _ => continue,
                }
            }
            if let Some((i, min)) = r.only_if {
                if get(i).unwrap_or(0.0) < min {
                    continue;
                }
            }
            let v = match get(r.signal) {
                Some(v) => v,
                None if r.absent_keeps => continue,
                None => 0.0,
            };
            if r.breaks(v, limit) {
                return Some(r.reason);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_gives_signals_reasons_thresholds_and_verdicts() {
        let mut d = Declare::new("q");
        let words = d.signal::<I64>("words", "words");
        let ratio = d.signal::<F32>("ratio", "a ratio");
        let label = d.signal::<Str>("label", "a label");
        d.min(words, count(Some(3)), "min_words", "too_few_words");
        d.max(words, count(None), "max_words", "too_many_words");
        d.max(ratio, Some(0.5), "max_ratio", "ratio");
        d.reason("unparsable");
        let t = d.finish();
        assert_eq!(
            t.signals()
                .iter()
                .map(|s| (s.name.as_ref(), s.ty))
                .collect::<Vec<_>>(),
            vec![
                ("q.words", SignalType::I64),
                ("q.ratio", SignalType::F32),
                ("q.label", SignalType::Str)
            ]
        );
        assert_eq!(
            t.reasons(),
            vec!["too_few_words", "too_many_words", "ratio", "unparsable"]
        );
        assert_eq!(
            t.thresholds(),
            vec![("q.words".to_string(), 3.0), ("q.ratio".to_string(), 0.5)]
        );
        let mut s = Signals::new();
        words.set(&mut s, 2);
        ratio.set(&mut s, 0.9);
        label.set(&mut s, "x");
        assert_eq!(label.get(&s), Some("x"));
        assert_eq!(t.judge(&s), Some("too_few_words"));
        words.set(&mut s, 1_000_000);
        assert_eq!(t.judge(&s), Some("ratio"));
        ratio.set(&mut s, 0.5);
        assert_eq!(t.judge(&s), None);
        // Absent signals read as 0.
        assert_eq!(t.judge(&Signals::new()), Some("too_few_words"));
        assert!(t.declares("q.label") && !t.declares("q.other"));
    }

    #[test]
    fn flags_fixed_bounds_allowlists_and_modifiers() {
        let mut d = Declare::new("r");
        let dup = d.signal::<Bool>("dup", "a flag");
        let lines = d.signal::<I64>("lines", "lines");
        let punct = d.signal::<F64>("punct", "a share");
        let hits = d.signal::<I64>("hits", "matches");
        let sim = d.signal::<F32>("sim", "a similarity");
        let lang = d.signal_named::<Str>("lang_x", "a label");
        d.flag(dup, "duplicate");
        d.fixed(lines, Bound::Min, 1.0, "empty");
        d.min(punct, Some(0.2), "min_punct", "punct")
            .zero_keeps(true);
        d.reach(hits, count(Some(3)), "max_hits", "hits")
            .only_if(lines, 2.0);
        d.reach(sim, Some(0.9), "threshold", "near").absent_keeps();
        d.one_of(lang, Some(vec!["en".into()]), "languages", "lang");
        let t = d.finish();
        // Only configured numeric bounds are thresholds.
        assert_eq!(
            t.thresholds(),
            vec![
                ("r.punct".to_string(), 0.2),
                ("r.hits".to_string(), 3.0),
                ("r.sim".to_string(), 0.9)
            ]
        );
        let mut s = Signals::new();
        dup.set(&mut s, true);
        assert_eq!(t.judge(&s), Some("duplicate"));
        dup.set(&mut s, false);
        assert_eq!(t.judge(&s), Some("empty"));
        lines.set(&mut s, 1);
        // punct absent reads 0, and 0 keeps: the language decides.
        assert_eq!(t.judge(&s), Some("lang"));
        lang.set(&mut s, "en");
        assert_eq!(t.judge(&s), None);
        punct.set(&mut s, 0.1);
        assert_eq!(t.judge(&s), Some("punct"));
        punct.set(&mut s, 0.5);
        // 3 hits reach the bound, but only pages of 2 lines or more are judged on them.
        hits.set(&mut s, 3);
        assert_eq!(t.judge(&s), None);
        lines.set(&mut s, 2);
        assert_eq!(t.judge(&s), Some("hits"));
        hits.set(&mut s, 2);
        sim.set(&mut s, 0.95);
        assert_eq!(t.judge(&s), Some("near"));
        // Values that are not signals yet: numeric rules only (the allowlist is not checked).
        let figures = |i: usize| if i == lines.index() { 5.0 } else { 0.0 };
        assert_eq!(t.judge_by(figures), None);
        assert_eq!(
            t.reasons(),
            vec!["duplicate", "empty", "punct", "hits", "near", "lang"]
        );
    }

    #[test]
    fn rules_per_language_follow_the_rules_signal() {
        let table = crate::lang_rules::LangTable::builtin();
        let mut d = Declare::new("p");
        let len = d.signal::<F64>("mean_word_length", "characters per word");
        let hashes = d.signal::<F64>("hashes", "a ratio");
        let rules = d.signal::<Str>("rules", "row");
        d.per_language(rules, table.limits());
        d.min(len, Some(3.0), "min_avg_word_length", "short_words");
        d.max(hashes, Some(0.1), "max_symbol_word_ratio", "hashes");
        let t = d.finish();
        assert_eq!(
            t.rules().iter().map(|r| r.per_lang).collect::<Vec<_>>(),
            [true, false]
        );
        let zh_min = table.row("zh").unwrap().get("min_avg_word_length").unwrap();
        assert!(zh_min < 2.0);
        let mut s = Signals::new();
        len.set(&mut s, 1.7);
        // English and pages without a row label keep the configured 3.
        for label in ["en", "default"] {
            rules.set(&mut s, label);
            assert_eq!(t.judge(&s), Some("short_words"), "{label}");
        }
        rules.set(&mut s, "zh");
        assert_eq!(t.judge(&s), None);
        len.set(&mut s, zh_min - 0.1);
        assert_eq!(t.judge(&s), Some("short_words"));
        // Neutral: the per-language rule is off, the others hold.
        rules.set(&mut s, "neutral");
        assert_eq!(t.judge(&s), None);
        hashes.set(&mut s, 0.5);
        assert_eq!(t.judge(&s), Some("hashes"));
    }

    #[test]
    fn names_are_interned_once() {
        let a = Declare::new("s").signal::<I64>("n", "").name();
        let b = Declare::new("s").signal::<I64>("n", "").name();
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    #[should_panic(expected = "declared twice")]
    fn a_signal_declared_twice_is_a_bug() {
        let mut d = Declare::new("s");
        d.signal::<I64>("n", "");
        d.signal::<F64>("n", "");
    }
}
