//! Signals: the typed numbers and labels that stages compute and store with a document.
//!
//! Every filter writes its measurements here (for example `gopher.dup_line_frac`), so that a
//! threshold can change later and selection re-runs over stored signals without recomputing
//! them. A stage declares its signals up front ([`SignalSpec`]) so that writers know the output
//! schema before the first document arrives.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// The storage type of a signal column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignalType {
    /// Stored as a 32-bit float (fractions, ratios, scores).
    F32,
    /// Stored as a 64-bit float.
    F64,
    /// Stored as a 64-bit signed integer (counts, ids, hashes).
    I64,
    /// Stored as a boolean.
    Bool,
    /// Stored as a UTF-8 string (labels, language codes).
    Str,
}

/// A declared signal: its dotted name (`family.measure`), type and a one-line meaning.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalSpec {
    pub name: Cow<'static, str>,
    pub ty: SignalType,
    pub help: Cow<'static, str>,
}

impl SignalSpec {
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        ty: SignalType,
        help: impl Into<Cow<'static, str>>,
    ) -> Self {
        SignalSpec {
            name: name.into(),
            ty,
            help: help.into(),
        }
    }
    pub fn f32(name: &'static str, help: &'static str) -> Self {
        Self::new(name, SignalType::F32, help)
    }
    pub fn f64(name: &'static str, help: &'static str) -> Self {
        Self::new(name, SignalType::F64, help)
    }
    pub fn i64(name: &'static str, help: &'static str) -> Self {
        Self::new(name, SignalType::I64, help)
    }
    pub fn bool(name: &'static str, help: &'static str) -> Self {
        Self::new(name, SignalType::Bool, help)
    }
    pub fn str(name: &'static str, help: &'static str) -> Self {
        Self::new(name, SignalType::Str, help)
    }
}

/// One signal value.
#[derive(Clone, Debug, PartialEq)]
pub enum SignalValue {
    F64(f64),
    I64(i64),
    Bool(bool),
    Str(String),
}

impl SignalValue {
    /// The value as a float (integers and booleans convert; strings do not).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            SignalValue::F64(v) => Some(v),
            SignalValue::I64(v) => Some(v as f64),
            SignalValue::Bool(v) => Some(if v { 1.0 } else { 0.0 }),
            SignalValue::Str(_) => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            SignalValue::I64(v) => Some(v),
            SignalValue::Bool(v) => Some(v as i64),
            SignalValue::F64(v) if v.fract() == 0.0 => Some(v as i64),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            SignalValue::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            SignalValue::Bool(v) => Some(v),
            SignalValue::I64(v) => Some(v != 0),
            _ => None,
        }
    }
    /// JSON form, used by JSONL writers and reports.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            SignalValue::F64(v) => serde_json::Number::from_f64(*v)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            SignalValue::I64(v) => serde_json::Value::from(*v),
            SignalValue::Bool(v) => serde_json::Value::Bool(*v),
            SignalValue::Str(s) => serde_json::Value::String(s.clone()),
        }
    }
}

/// A borrowed signal value, for [`Signals::put`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SignalRef<'a> {
    F64(f64),
    I64(i64),
    Bool(bool),
    Str(&'a str),
}

impl SignalRef<'_> {
    pub fn to_owned(self) -> SignalValue {
        match self {
            SignalRef::F64(v) => SignalValue::F64(v),
            SignalRef::I64(v) => SignalValue::I64(v),
            SignalRef::Bool(v) => SignalValue::Bool(v),
            SignalRef::Str(v) => SignalValue::Str(v.to_string()),
        }
    }
}

impl fmt::Display for SignalValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalValue::F64(v) => write!(f, "{v}"),
            SignalValue::I64(v) => write!(f, "{v}"),
            SignalValue::Bool(v) => write!(f, "{v}"),
            SignalValue::Str(s) => write!(f, "{s}"),
        }
    }
}

/// The signals of one document, ordered by name (deterministic iteration).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Signals {
    map: BTreeMap<Cow<'static, str>, SignalValue>,
}

impl Signals {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set(&mut self, name: impl Into<Cow<'static, str>>, value: SignalValue) {
        self.map.insert(name.into(), value);
    }
    pub fn set_f64(&mut self, name: impl Into<Cow<'static, str>>, v: f64) {
        self.set(name, SignalValue::F64(v));
    }
    pub fn set_i64(&mut self, name: impl Into<Cow<'static, str>>, v: i64) {
        self.set(name, SignalValue::I64(v));
    }
    pub fn set_bool(&mut self, name: impl Into<Cow<'static, str>>, v: bool) {
        self.set(name, SignalValue::Bool(v));
    }
    pub fn set_str(&mut self, name: impl Into<Cow<'static, str>>, v: impl Into<String>) {
        self.set(name, SignalValue::Str(v.into()));
    }
    /// Sets a value under a borrowed name, reusing the stored key (and string buffer) when the
    /// signal is already present: selection refills one `Signals` per row without allocating.
    pub fn put(&mut self, name: &str, value: SignalRef<'_>) {
        match (self.map.get_mut(name), value) {
            (Some(SignalValue::Str(s)), SignalRef::Str(v)) => {
                s.clear();
                s.push_str(v);
            }
            (Some(slot), v) => *slot = v.to_owned(),
            (None, v) => {
                self.map.insert(Cow::Owned(name.to_string()), v.to_owned());
            }
        }
    }
    pub fn get(&self, name: &str) -> Option<&SignalValue> {
        self.map.get(name)
    }
    pub fn f64(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(SignalValue::as_f64)
    }
    pub fn i64(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(SignalValue::as_i64)
    }
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(SignalValue::as_str)
    }
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(SignalValue::as_bool)
    }
    pub fn remove(&mut self, name: &str) -> Option<SignalValue> {
        self.map.remove(name)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SignalValue)> {
        self.map.iter().map(|(k, v)| (k.as_ref(), v))
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// JSON object of all signals.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.map {
            m.insert(k.to_string(), v.to_json());
        }
        serde_json::Value::Object(m)
    }
}
