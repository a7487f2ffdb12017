//! `signal.import`: typed signals from fields of the input records.
//!
//! Datasets often arrive with scores computed elsewhere (a quality score, a language label,
//! a domain from the source's own taxonomy, a teacher model's labels). Readers keep extra
//! JSONL fields and Parquet string columns as document metadata; this stage turns the ones
//! named in its config into typed signals `<stage>.<field>`, so that `mix.bucket`, the mix
//! planner and `curate mix` treat them like any stage's measurements.
//!
//! ```toml
//! [stages.topic]
//! type = "signal.import"
//! [stages.topic.fields]
//! code = "f32"                                  # metadata `code` -> signal `topic.code`
//! math = { type = "f32", from = "math_score" }  # metadata `math_score` -> `topic.math`
//! ```
//!
//! A missing field leaves the signal unset (null), unless `required = true`: then the
//! document is dropped as `missing_field`. A value that does not parse as its type drops the
//! document as `bad_field` (bad input never passes silently as a zero).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{ConfigError, StageArgs};
use crate::declare::{Declare, Declared, DynSig};
use crate::signals::{SignalType, Signals};
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::Document;

/// One imported field: a type name, or a table with details.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FieldSpec {
    /// `"f32"`, `"f64"`, `"i64"`, `"bool"` or `"str"`; the metadata key is the field name.
    Type(SignalType),
    Full(FieldTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldTable {
    /// `f32`, `f64`, `i64`, `bool` or `str`.
    #[serde(rename = "type")]
    pub ty: SignalType,
    /// Metadata key to read (default: the field name).
    pub from: Option<String>,
    /// Full signal name instead of `<stage>.<field>` (e.g. `lang` for a dataset's own
    /// language labels).
    pub signal: Option<String>,
    /// Drop documents without the field (`missing_field`); default false (signal left null).
    #[serde(default)]
    pub required: bool,
}

/// `[stages.NAME]` of `signal.import`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// Field name -> type or `{ type, from, signal, required }`.
    pub fields: BTreeMap<String, FieldSpec>,
}

struct Field {
    from: String,
    signal: DynSig,
    required: bool,
}

pub struct Import {
    name: String,
    fields: Vec<Field>,
    declared: Declared,
}

pub static DEF: StageDef = StageDef {
    kind: "signal.import",
    about: "Typed signals from input record fields (precomputed scores, labels)",
    example: "[fields]\ncode = \"f32\"\nmath = { type = \"f32\", from = \"math_score\" }\nlang = { type = \"str\", signal = \"source_lang\", required = true }",
    build,
};

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: ImportConfig = args.parse()?;
    if cfg.fields.is_empty() {
        return Err(ConfigError::new("fields", "no field to import"));
    }
    let mut d = Declare::new(args.name);
    d.reason("missing_field");
    d.reason("bad_field");
    let mut fields = Vec::new();
    for (k, spec) in cfg.fields {
        let (ty, from, signal, required) = match spec {
            FieldSpec::Type(t) => (t, None, None, false),
            FieldSpec::Full(t) => (t.ty, t.from, t.signal, t.required),
        };
        if signal.as_deref() == Some("") {
            return Err(ConfigError::new(
                format!("fields.{k}.signal"),
                "empty signal name",
            ));
        }
        let from = from.unwrap_or_else(|| k.clone());
        let name = signal.unwrap_or_else(|| format!("{}.{k}", args.name));
        let help = format!("imported from input field `{from}`");
        let Some(signal) = d.signal_as(&name, ty, help) else {
            return Err(ConfigError::new(
                format!("fields.{k}"),
                format!("signal {name} is imported by another field too"),
            ));
        };
        fields.push(Field {
            from,
            signal,
            required,
        });
    }
    Ok(Built::Map(Box::new(Import {
        name: args.name.to_string(),
        fields,
        declared: d.finish(),
    })))
}

/// Parses one metadata value as a signal of type `ty` into `out`; false if it does not parse.
fn parse_into(out: &mut Signals, name: &'static str, ty: SignalType, v: &str) -> bool {
    let v = v.trim();
    match ty {
        SignalType::F32 | SignalType::F64 => match v.parse::<f64>() {
            Ok(x) if !x.is_nan() => out.set_f64(name, x),
            _ => return false,
        },
        SignalType::I64 => match v.parse::<i64>() {
            Ok(x) => out.set_i64(name, x),
            // JSON writes some integers as 3.0.
            Err(_) => match v.parse::<f64>() {
                Ok(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => out.set_i64(name, x as i64),
                _ => return false,
            },
        },
        SignalType::Bool => match v.to_ascii_lowercase().as_str() {
            "true" | "1" => out.set_bool(name, true),
            "false" | "0" => out.set_bool(name, false),
            _ => return false,
        },
        SignalType::Str => out.set_str(name, v),
    }
    true
}

impl Stage for Import {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        for f in &self.fields {
            match doc.metadata.get(&f.from) {
                None if f.required => return Outcome::Drop("missing_field"),
                None => {}
                Some(v) if !parse_into(&mut doc.signals, f.signal.name, f.signal.ty, v) => {
                    return Outcome::Drop("bad_field")
                }
                Some(_) => {}
            }
        }
        Outcome::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::{jsonl::parse_line, ReadOptions};
    use std::sync::Arc;

    fn stage(name: &str, toml: &str) -> Result<Box<dyn Stage>, ConfigError> {
        crate::kit::stage(&DEF, name, toml)
    }

    fn doc(line: &str) -> Document {
        let opts = ReadOptions {
            max_record_bytes: 1 << 20,
            text_field: "text".into(),
            id_field: "id".into(),
            url_field: "url".into(),
        };
        parse_line(line.as_bytes(), &Arc::from("t.jsonl"), 0, &opts).unwrap()
    }

    #[test]
    fn imports_typed_fields_from_jsonl_records() {
        let s = stage("meta", DEF.example).unwrap();
        let names: Vec<String> = s.signals().iter().map(|x| x.name.to_string()).collect();
        assert_eq!(names, ["meta.code", "source_lang", "meta.math"]);
        let mut d = doc(r#"{"id":"1","text":"x","code":0.75,"math_score":"2e-1","lang":"de"}"#);
        assert_eq!(s.process(&mut d), Outcome::Keep);
        assert_eq!(d.signals.f64("meta.code"), Some(0.75));
        assert!((d.signals.f64("meta.math").unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(d.signals.str("source_lang"), Some("de"));
        // Optional field absent: left null. Required absent: dropped.
        let mut d = doc(r#"{"id":"2","text":"x","lang":"en"}"#);
        assert_eq!(s.process(&mut d), Outcome::Keep);
        assert_eq!(d.signals.get("meta.code"), None);
        let mut d = doc(r#"{"id":"3","text":"x","code":1}"#);
        assert_eq!(s.process(&mut d), Outcome::Drop("missing_field"));
        let mut d = doc(r#"{"id":"4","text":"x","code":"high","lang":"en"}"#);
        assert_eq!(s.process(&mut d), Outcome::Drop("bad_field"));
    }

    #[test]
    fn integers_and_booleans() {
        let s = stage("m", "[fields]\nn = 'i64'\nok = 'bool'").unwrap();
        let mut d = doc(r#"{"id":"1","text":"x","n":3.0,"ok":true}"#);
        assert_eq!(s.process(&mut d), Outcome::Keep);
        assert_eq!(d.signals.i64("m.n"), Some(3));
        assert_eq!(d.signals.bool("m.ok"), Some(true));
        let mut d = doc(r#"{"id":"1","text":"x","n":3.5}"#);
        assert_eq!(s.process(&mut d), Outcome::Drop("bad_field"));
        let mut d = doc(r#"{"id":"1","text":"x","ok":"maybe"}"#);
        assert_eq!(s.process(&mut d), Outcome::Drop("bad_field"));
    }

    #[test]
    fn bad_config_names_key() {
        let key = |t: &str| stage("m", t).err().unwrap().key;
        assert_eq!(key("[fields]\nx = 'float'"), "fields.x");
        assert_eq!(key("[fields.x]\ntype = 'f32'\nfrom_ = 'y'"), "fields.x");
        assert_eq!(key("[fields]"), "fields");
        assert_eq!(key(""), "");
    }
}
