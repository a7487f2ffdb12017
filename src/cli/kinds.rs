//! `curate stages`: what each stage kind is. Without an argument, every kind the engine knows
//! with its one-line `about`; with a kind, its about, the keys of its section and a section
//! that builds it. The keys come from the kind's own config struct (the one that parses its
//! TOML section: its unknown-key error lists what it accepts), so they cannot drift from what
//! `curate run` accepts.

use stages::declare::Bound;
use stages::{Built, Purpose, SignalType, StageArgs, StageDef};

use super::CliError;
use crate::config::plan::registries;

#[derive(Debug, clap::Args)]
pub struct StagesArgs {
    /// A stage kind (`filter.length`, or its short name `length`): print its keys and example.
    pub kind: Option<String>,
}

/// The keys a kind's config struct accepts, in declaration order (empty when its section
/// takes any key).
pub fn keys(def: &StageDef) -> Vec<String> {
    const PROBE: &str = "__curate_probe__";
    let mut table = toml::Table::new();
    table.insert(PROBE.into(), toml::Value::Integer(0));
    let args = StageArgs {
        name: def.short_name(),
        table: &table,
        base_dir: std::path::Path::new("."),
        purpose: Purpose::Select,
        seed: 0,
    };
    let Err(e) = (def.build)(&args) else {
        return Vec::new();
    };
    if e.key != PROBE {
        return Vec::new();
    }
    // serde: "unknown field `x`, expected one of `a`, `b`" (or "expected `a`").
    let Some((_, expected)) = e.message.split_once("expected") else {
        return Vec::new();
    };
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

include!(concat!(env!("OUT_DIR"), "/config_docs.rs"));

/// One key of a kind's section, as `curate stages KIND` prints it.
#[derive(Debug, PartialEq)]
pub struct KeyDoc {
    pub name: &'static str,
    /// TOML type, from the config struct.
    pub ty: String,
    /// `required`, or `default: VALUE` (`unset` for an option left empty).
    pub default: String,
    /// The field's doc comment.
    pub doc: &'static str,
}

/// An enum default as TOML writes it: the variant of `ty` (`one of "cpu", "cuda"`) that the
/// Rust name (`Cpu`) spells, else the Rust name.
fn variant_name(ty: &str, debug: String) -> String {
    let plain = |s: &str| s.replace('_', "").to_ascii_lowercase();
    ty.strip_prefix("one of ")
        .and_then(|v| {
            v.split(", ")
                .find(|q| plain(q.trim_matches('"')) == plain(&debug))
        })
        .map_or(debug.clone(), str::to_string)
}

/// The keys of a kind's section, read from the config struct its builder parses (types and
/// defaults: `stages::describe`; docs: the struct's doc comments, collected by `build.rs`).
/// `None` when the builder parses no config struct.
pub fn describe(def: &StageDef) -> Option<Vec<KeyDoc>> {
    let table = toml::Table::new();
    let args = StageArgs {
        name: def.short_name(),
        table: &table,
        base_dir: std::path::Path::new("."),
        purpose: Purpose::Select,
        seed: 0,
    };
    let info = stages::describe::capture(|| (def.build)(&args))?;
    let docs: &[(&str, &str)] = CONFIG_DOCS
        .iter()
        .find(|(ty, _)| *ty == info.type_name)
        .map(|(_, d)| *d)
        .unwrap_or_default();
    let keys = info
        .keys
        .into_iter()
        .map(|k| KeyDoc {
            name: k.name,
            doc: docs
                .iter()
                .find(|(n, _)| *n == k.name)
                .map(|(_, d)| *d)
                .unwrap_or_default(),
            default: match (k.required, k.default.map(|d| variant_name(&k.ty, d))) {
                (true, _) => "required".to_string(),
                (false, Some(d)) if d == "None" => "unset".to_string(),
                (false, Some(d)) => {
                    let d = d
                        .strip_prefix("Some(")
                        .and_then(|d| d.strip_suffix(')'))
                        .unwrap_or(&d);
                    format!("default: {d}")
                }
                (false, None) => "optional".to_string(),
            },
            ty: k.ty,
        })
        .collect();
    Some(keys)
}

fn type_name(t: SignalType) -> &'static str {
    match t {
        SignalType::F32 => "f32",
        SignalType::F64 => "f64",
        SignalType::I64 => "i64",
        SignalType::Bool => "bool",
        SignalType::Str => "str",
    }
}

/// The text `curate stages` prints.
pub fn render(kind: Option<&str>) -> Result<String, CliError> {
    let regs = registries();
    let mut out = String::new();
    let Some(kind) = kind else {
        let all: Vec<&StageDef> = regs.iter().flat_map(|r| r.iter().copied()).collect();
        let width = all.iter().map(|d| d.kind.len()).max().unwrap_or(0);
        for d in all {
            out.push_str(&format!("{:width$}  {}\n", d.kind, d.about));
        }
        out.push_str("\n`curate stages KIND` prints a kind's keys and an example section.\n");
        return Ok(out);
    };
    let def = stages::registry::find(&regs, kind).ok_or_else(|| {
        CliError::Config(format!(
            "unknown stage kind {kind:?} (`curate stages` lists them)"
        ))
    })?;
    out.push_str(&format!("{}: {}\n\nkeys:\n", def.kind, def.about));
    let described = describe(def);
    match &described {
        None => out.push_str("  (any key: see the kind's documentation)\n"),
        Some(k) if k.is_empty() => out.push_str("  (none)\n"),
        Some(_) => {}
    }
    for k in described.unwrap_or_default() {
        out.push_str(&format!(
            "  {} ({}; {}): {}\n",
            k.name, k.ty, k.default, k.doc
        ));
    }
    out.push_str("\nkeys the engine reads in every stage section:\n");
    for (k, help) in crate::config::plan::ENGINE_KEYS {
        out.push_str(&format!("  {k}: {help}\n"));
    }
    // Signals and rules, from the stage built from its example (when that needs no file).
    let table: toml::Table = def.example.parse().unwrap_or_default();
    let args = StageArgs {
        name: def.short_name(),
        table: &table,
        base_dir: std::path::Path::new("."),
        purpose: Purpose::Select,
        seed: 0,
    };
    if let Ok(built) = (def.build)(&args) {
        let (signals, declared) = match &built {
            Built::Map(s) => (s.signals(), s.declared().cloned()),
            Built::Global(g) => (g.signals(), g.declared().cloned()),
        };
        if !signals.is_empty() {
            out.push_str(&format!("\nsignals (as [stages.{}]):\n", def.short_name()));
        }
        for sg in signals {
            out.push_str(
                &format!("  {} ({:?}): {}\n", sg.name, sg.ty, sg.help).replace(
                    &format!("({:?})", sg.ty),
                    &format!("({})", type_name(sg.ty)),
                ),
            );
        }
        if let Some(d) = declared.filter(|d| !d.rules().is_empty()) {
            out.push_str("\nrules (the first one broken drops):\n");
            for r in d.rules() {
                let sig = d.signal_name(r);
                let value = match (r.key, r.value) {
                    (Some(k), _) => k.to_string(),
                    (None, Some(v)) => v.to_string(),
                    (None, None) => "-".to_string(),
                };
                let when = match r.bound {
                    Bound::Min => format!("{sig} < {value}"),
                    Bound::Max => format!("{sig} > {value}"),
                    Bound::Reach => format!("{sig} >= {value}"),
                    Bound::True => format!("{sig} is true"),
                    Bound::OneOf => format!("{sig} is not one of {value}"),
                };
                let mut extra = String::new();
                if r.zero_keeps {
                    extra.push_str(" (0 keeps)");
                }
                if let Some((i, min)) = r.only_if {
                    extra.push_str(&format!(" (only when {} >= {min})", d.signal_names()[i]));
                }
                out.push_str(&format!(
                    "  {}: drop {:?} when {when}{extra}\n",
                    r.key.unwrap_or("(fixed)"),
                    r.reason,
                ));
            }
        }
    }
    let mut wrapped = toml::Table::new();
    let mut section = toml::Table::new();
    section.insert(def.short_name().into(), toml::Value::Table(table));
    wrapped.insert("stages".into(), toml::Value::Table(section));
    out.push_str(&format!(
        "\nexample:\n{}",
        toml::to_string(&wrapped).unwrap_or_default()
    ));
    Ok(out)
}

pub fn run(a: StagesArgs) -> Result<(), CliError> {
    print!("{}", render(a.kind.as_deref())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_every_kind_and_prints_keys_from_the_config_struct() {
        let list = render(None).unwrap();
        for def in registries().iter().flat_map(|r| r.iter()) {
            assert!(
                list.contains(def.kind) && list.contains(def.about),
                "{}",
                def.kind
            );
        }
        let one = render(Some("line_length")).unwrap();
        assert!(one.starts_with("filter.line_length: Maximum line length in characters"));
        assert!(
            one.contains("\n  max_line_chars (integer; unset): Maximum characters in one line"),
            "{one}"
        );
        assert!(
            one.contains("[stages.line_length]\nmax_line_chars = 1000"),
            "{one}"
        );
        assert!(
            one.contains("  line_length.max_line_chars (i64): characters in the longest line\n"),
            "{one}"
        );
        assert!(
            one.contains("  max_line_chars: drop \"line_too_long\" when line_length.max_line_chars > max_line_chars\n"),
            "{one}"
        );
        assert_eq!(
            keys(stages::registry::find(&registries(), "length").unwrap()),
            [
                "min_chars",
                "max_chars",
                "min_words",
                "max_words",
                "min_lines"
            ]
        );
        // Every kind whose section is a fixed set of keys lists them, and each key of its
        // example is one of them.
        for def in registries().iter().flat_map(|r| r.iter()) {
            let k = keys(def);
            let example: toml::Table = def.example.parse().unwrap();
            if !k.is_empty() {
                for key in example.keys() {
                    assert!(
                        k.contains(key),
                        "{}: example key {key} not in {k:?}",
                        def.kind
                    );
                }
            }
        }
        assert!(matches!(render(Some("nonsense")), Err(CliError::Config(_))));
    }

    /// The key tables written in docs/ name exactly the keys of the stage's config struct.
    #[test]
    fn key_tables_in_docs_match_the_config_structs() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for (doc, header, kind) in [
            ("docs/mix.md", "| key | default | meaning |", "mix.bucket"),
            ("docs/tokenize.md", "| key | meaning |", "tokenize.count"),
        ] {
            let text = std::fs::read_to_string(repo.join(doc)).unwrap();
            let table = &text[text.find(header).unwrap()..];
            // Keys are the backticked names of each row's first cell.
            let mut in_doc: Vec<&str> = table
                .lines()
                .skip(2)
                .take_while(|l| l.starts_with('|'))
                .flat_map(|l| {
                    l.split('|')
                        .nth(1)
                        .unwrap_or("")
                        .split('`')
                        .skip(1)
                        .step_by(2)
                })
                .collect();
            in_doc.sort();
            let def = stages::registry::find(&registries(), kind).unwrap();
            let mut listed: Vec<&str> = describe(def).unwrap().iter().map(|k| k.name).collect();
            listed.sort();
            assert_eq!(in_doc, listed, "{doc}: the key table of {kind}");
        }
    }

    /// `curate stages KIND` for every registered kind: each key its parser accepts is listed
    /// with a type and its doc comment, and nothing else is listed.
    #[test]
    fn every_kind_lists_the_keys_its_parser_accepts_with_types_and_docs() {
        let mut failed = Vec::new();
        for def in registries().iter().flat_map(|r| r.iter()) {
            let Some(listed) = describe(def) else {
                failed.push(format!("{}: no config struct described", def.kind));
                continue;
            };
            let names: Vec<&str> = listed.iter().map(|k| k.name).collect();
            let accepted = keys(def);
            let printed = render(Some(def.kind)).unwrap();
            for k in &accepted {
                if !names.contains(&k.as_str()) {
                    failed.push(format!("{}: accepts `{k}`, not listed", def.kind));
                }
            }
            if !accepted.is_empty() && names.len() != accepted.len() {
                failed.push(format!(
                    "{}: lists {names:?}, accepts {accepted:?}",
                    def.kind
                ));
            }
            for k in &listed {
                if k.ty.is_empty() || k.doc.is_empty() {
                    failed.push(format!(
                        "{}: key `{}` lacks a type or doc: {k:?}",
                        def.kind, k.name
                    ));
                }
                if !printed.contains(&format!("\n  {} ({}; ", k.name, k.ty)) {
                    failed.push(format!("{}: `{}` not printed", def.kind, k.name));
                }
            }
        }
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }
}
