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

/// Keys the engine reads from every `[stages.NAME]` section before the stage sees it.
const ENGINE_KEYS: &[(&str, &str)] = &[
    (
        "type",
        "the stage kind (not needed when the section's name is the kind's short name)",
    ),
    (
        "mode",
        "\"drop\" (default) removes what the stage rejects; \"tag\" keeps it with its verdict",
    ),
    (
        "only_languages",
        "run the stage only on documents whose `lang` signal is one of these",
    ),
];

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
    let keys = keys(def);
    if keys.is_empty() {
        out.push_str("  (any key: see the kind's documentation)\n");
    }
    for k in keys {
        out.push_str(&format!("  {k}\n"));
    }
    out.push_str("\nkeys the engine reads in every stage section:\n");
    for (k, help) in ENGINE_KEYS {
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
        assert!(one.contains("\n  max_line_chars\n"), "{one}");
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
}
