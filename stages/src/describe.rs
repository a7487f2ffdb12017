//! What a stage's config section accepts, read from the config struct that parses it.
//!
//! `curate stages KIND` and its test need each key's name, type, default and whether it is
//! required, and they must not drift from what `curate run` accepts. So they are not written
//! down anywhere: [`capture`] builds the stage in a describing mode in which
//! [`StageArgs::parse`](crate::StageArgs::parse) does not parse but asks the config type
//! itself. Serde's derived `Deserialize` names the struct's keys; feeding each key a probe
//! value records which type the field asks for; deserializing from only the required keys
//! gives the defaults (read from the struct's `Debug` form). The keys' documentation is the
//! struct's own doc comments, which the `curate` crate's build script collects.

use std::cell::RefCell;
use std::fmt::{self, Debug, Display};

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

/// One key of a stage's section.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyInfo {
    /// The key as written in TOML.
    pub name: &'static str,
    /// Its TOML type (`integer`, `list of string`, `one of "a", "b"`, ...).
    pub ty: String,
    /// Whether a section must set it.
    pub required: bool,
    /// Its value when not set, in Rust's `Debug` form (`None`: unset, or not known).
    pub default: Option<String>,
}

/// A stage's config struct as [`capture`] saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigInfo {
    /// The Rust path of the config type (`stages::filter::length::LengthConfig`).
    pub type_name: &'static str,
    /// Its keys in declaration order; empty when the section is not a struct.
    pub keys: Vec<KeyInfo>,
}

thread_local! {
    /// `Some` while [`capture`] runs: the first config type parsed.
    static CAPTURE: RefCell<Option<Option<ConfigInfo>>> = const { RefCell::new(None) };
}

/// Runs `build` (a stage's builder) in describing mode and returns what its config type
/// accepts; `None` when it parsed no config.
pub fn capture<R>(build: impl FnOnce() -> R) -> Option<ConfigInfo> {
    CAPTURE.with(|c| *c.borrow_mut() = Some(None));
    let _ = build();
    CAPTURE.with(|c| c.borrow_mut().take().flatten())
}

/// Whether [`capture`] is running on this thread.
pub(crate) fn describing() -> bool {
    CAPTURE.with(|c| c.borrow().is_some())
}

/// Records `T` for the running [`capture`] (the first type only).
pub(crate) fn record<T: DeserializeOwned + Debug>() {
    let info = describe::<T>();
    CAPTURE.with(|c| {
        if let Some(slot @ None) = c.borrow_mut().as_mut() {
            *slot = Some(info);
        }
    });
}

/// Describes the config type `T`.
pub fn describe<T: DeserializeOwned + Debug>() -> ConfigInfo {
    let type_name = std::any::type_name::<T>();
    let fields = RefCell::new(None);
    let _ = T::deserialize(Top {
        fields: &fields,
        give: Give::None,
    });
    let Some(fields) = fields.into_inner() else {
        return ConfigInfo {
            type_name,
            keys: Vec::new(),
        };
    };
    // Each key's type: the probe records what the field asks for, whatever happens after.
    let mut keys: Vec<KeyInfo> = fields
        .iter()
        .map(|&name| {
            let ty = RefCell::new(String::new());
            let _ = T::deserialize(Top {
                fields: &RefCell::new(None),
                give: Give::One(name, &ty),
            });
            KeyInfo {
                name,
                ty: ty.into_inner(),
                required: false,
                default: None,
            }
        })
        .collect();
    // Required keys: serde names the first one missing; give it a probe value and retry.
    let mut given: Vec<&'static str> = Vec::new();
    let value = loop {
        let sink = RefCell::new(String::new());
        match T::deserialize(Top {
            fields: &RefCell::new(None),
            give: Give::Some(&given, &sink),
        }) {
            Ok(v) => break Some(v),
            Err(Stop(m)) => match missing_field(&m) {
                Some(f) if !given.contains(&f) => {
                    let Some(&name) = fields.iter().find(|n| **n == f) else {
                        break None;
                    };
                    given.push(name);
                }
                _ => break None,
            },
        }
    };
    for k in &mut keys {
        k.required = given.contains(&k.name);
    }
    if let Some(v) = value {
        let defaults = debug_fields(&format!("{v:#?}"));
        // Debug lists the Rust fields in declaration order, as serde lists the keys.
        if defaults.len() == keys.len() {
            for (k, d) in keys.iter_mut().zip(defaults) {
                if !k.required {
                    k.default = Some(d);
                }
            }
        }
    }
    ConfigInfo { type_name, keys }
}

fn missing_field(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(&rest[..rest.find('`')?])
}

/// The field values of a struct's pretty `Debug` form, in order (one per field).
fn debug_fields(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in s.lines().skip(1) {
        if let Some(rest) = line.strip_prefix("    ") {
            if !rest.starts_with(' ') {
                if let Some((_, v)) = rest.split_once(": ") {
                    out.push(v.to_string());
                    continue;
                }
            }
            if let Some(last) = out.last_mut() {
                last.push(' ');
                last.push_str(rest.trim());
            }
        }
    }
    out.into_iter()
        .map(|v| v.trim_end_matches(',').to_string())
        .collect()
}

/// Why a probe deserialization stopped (any error: only what was recorded before counts).
#[derive(Debug)]
struct Stop(String);

impl Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Stop {}
impl de::Error for Stop {
    fn custom<T: Display>(msg: T) -> Self {
        Stop(msg.to_string())
    }
}

/// Which keys the top-level map holds.
#[derive(Clone, Copy)]
enum Give<'a> {
    /// None: serde only names the fields.
    None,
    /// One key, whose probe records the type it is asked for.
    One(&'static str, &'a RefCell<String>),
    /// These keys, with probe values.
    Some(&'a [&'static str], &'a RefCell<String>),
}

/// The section: a struct deserializer that records the field names serde asks for.
struct Top<'a> {
    fields: &'a RefCell<Option<Vec<&'static str>>>,
    give: Give<'a>,
}

impl<'de> de::Deserializer<'de> for Top<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop("not a struct".into()))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        *self.fields.borrow_mut() = Some(fields.to_vec());
        let keys: Vec<(&'static str, &RefCell<String>)> = match self.give {
            Give::None => return Err(Stop("fields named".into())),
            Give::One(k, ty) => vec![(k, ty)],
            Give::Some(ks, sink) => ks.iter().map(|&k| (k, sink)).collect(),
        };
        visitor.visit_map(Fields { keys, next: 0 })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The keys of a probed map, each with a probe value.
struct Fields<'a> {
    keys: Vec<(&'static str, &'a RefCell<String>)>,
    next: usize,
}

impl<'de> de::MapAccess<'de> for Fields<'_> {
    type Error = Stop;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        let Some(&(k, _)) = self.keys.get(self.next) else {
            return Ok(None);
        };
        seed.deserialize(k.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
        let (_, ty) = self.keys[self.next];
        self.next += 1;
        seed.deserialize(Probe { ty })
    }
}

/// A value of whatever type is asked for (zero, false, "", the first variant), recording
/// that type as TOML names it.
struct Probe<'a> {
    ty: &'a RefCell<String>,
}

impl Probe<'_> {
    fn note(&self, s: &str) {
        self.ty.borrow_mut().push_str(s);
    }
}

macro_rules! probe_number {
    ($($method:ident => $visit:ident($($v:expr)?), $name:literal;)*) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
            self.note($name);
            visitor.$visit($($v)?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        self.note("any");
        Err(Stop("any".into()))
    }

    probe_number! {
        deserialize_bool => visit_bool(false), "bool";
        deserialize_i8 => visit_i8(0), "integer";
        deserialize_i16 => visit_i16(0), "integer";
        deserialize_i32 => visit_i32(0), "integer";
        deserialize_i64 => visit_i64(0), "integer";
        deserialize_u8 => visit_u8(0), "integer";
        deserialize_u16 => visit_u16(0), "integer";
        deserialize_u32 => visit_u32(0), "integer";
        deserialize_u64 => visit_u64(0), "integer";
        deserialize_f32 => visit_f32(0.0), "float";
        deserialize_f64 => visit_f64(0.0), "float";
        deserialize_char => visit_char('a'), "string";
        deserialize_str => visit_str(""), "string";
        deserialize_string => visit_str(""), "string";
        deserialize_identifier => visit_str(""), "string";
        deserialize_bytes => visit_bytes(&[]), "bytes";
        deserialize_byte_buf => visit_bytes(&[]), "bytes";
        deserialize_unit => visit_unit(), "nothing";
        deserialize_ignored_any => visit_unit(), "any";
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        self.note("list of ");
        visitor.visit_seq(Items {
            ty: self.ty,
            left: 1,
            sep: "",
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Stop> {
        self.note("[");
        let v = visitor.visit_seq(Items {
            ty: self.ty,
            left: len,
            sep: ", ",
        });
        self.note("]");
        v
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        self.note("table");
        visitor.visit_map(Fields {
            keys: Vec::new(),
            next: 0,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        self.note("table");
        // Nested keys get probe values too; their types are not recorded.
        let sink = RefCell::new(String::new());
        visitor.visit_map(Fields {
            keys: fields.iter().map(|&f| (f, &sink)).collect(),
            next: 0,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let names: Vec<String> = variants.iter().map(|v| format!("{v:?}")).collect();
        self.note(&format!("one of {}", names.join(", ")));
        let first = variants.first().copied().unwrap_or_default();
        visitor.visit_enum(first.into_deserializer())
    }
}

/// The elements of a probed list or tuple.
struct Items<'a> {
    ty: &'a RefCell<String>,
    left: usize,
    sep: &'static str,
}

impl<'de> de::SeqAccess<'de> for Items<'_> {
    type Error = Stop;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Stop> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let v = seed.deserialize(Probe { ty: self.ty })?;
        if self.left > 0 {
            self.ty.borrow_mut().push_str(self.sep);
        }
        Ok(Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Example {
        model: String,
        #[serde(default = "three")]
        n: u64,
        min: Option<f64>,
        #[serde(default)]
        pairs: Vec<(usize, f64)>,
        #[serde(default, rename = "type")]
        kind: Kind,
    }
    fn three() -> u64 {
        3
    }
    #[derive(Debug, Deserialize, Default)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        #[default]
        Cpu,
        Cuda,
    }

    #[test]
    fn keys_types_defaults_and_required_come_from_the_struct() {
        let info = describe::<Example>();
        assert!(info.type_name.ends_with("Example"));
        let got: Vec<(&str, &str, bool, Option<&str>)> = info
            .keys
            .iter()
            .map(|k| (k.name, k.ty.as_str(), k.required, k.default.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("model", "string", true, None),
                ("n", "integer", false, Some("3")),
                ("min", "float", false, Some("None")),
                ("pairs", "list of [integer, float]", false, Some("[]")),
                ("type", "one of \"cpu\", \"cuda\"", false, Some("Cpu")),
            ]
        );
    }

    #[test]
    fn capture_sees_the_type_a_stage_parses() {
        let def = &crate::filter::length::DEF;
        let t = toml::Table::new();
        let args = crate::StageArgs {
            name: "length",
            table: &t,
            base_dir: std::path::Path::new("."),
            purpose: crate::Purpose::Select,
            seed: 0,
        };
        let info = capture(|| (def.build)(&args)).unwrap();
        assert!(info.type_name.ends_with("LengthConfig"));
        assert_eq!(info.keys[0].name, "min_chars");
        assert_eq!(info.keys[0].ty, "integer");
        assert!(!describing());
        // Outside capture, the section parses as usual.
        assert!((def.build)(&args).is_ok());
    }
}
