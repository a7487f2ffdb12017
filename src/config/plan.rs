//! The validated plan: stages built from their sections, grouped into phases.
//!
//! Per-document stages run together in a map phase. A global stage (dedup) is a barrier: its
//! collector ends one map phase, its steps run across the barrier, and its applier opens the
//! next map phase, whose input is the previous phase's output:
//!
//! ```text
//! map0: read -> s1 -> s2 -> collect(g1)     writes work/map0/docs/part-*.parquet
//! g1.step_a, g1.step_b                       (each split into tasks)
//! map1: apply(g1) -> s3 -> ...               writes docs/part-*.parquet
//! ```

use std::path::{Path, PathBuf};

use stages::signals::SignalSpec;
use stages::{Built, Purpose, StageArgs, StageDef};

use super::{is_bare_key, key_segment, ConfigError, ConfigFile};

/// What a stage does with a failing document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Remove it from the flow (written to `dropped/` when enabled).
    Drop,
    /// Record the failure as a flag and keep it flowing (for ablations: thresholds apply later).
    Tag,
}

/// One configured stage.
pub struct StageSlot {
    pub name: String,
    pub kind: &'static str,
    pub mode: Mode,
    /// `only_languages = [...]`: the stage sees only documents whose `lang` signal is listed (an
    /// English-only heuristic must not judge German pages); others pass it untouched.
    pub languages: Option<Vec<String>>,
    /// `when = "..."`: the stage sees only documents whose signals meet it (a cascade: an
    /// expensive classifier scores what the cheap stages leave undecided).
    pub when: Option<super::when::When>,
    pub built: Built,
}

impl StageSlot {
    /// Whether the stage applies to a document with these signals (its `only_languages` scope
    /// and its `when` condition).
    pub fn applies_to(&self, signals: &stages::Signals) -> bool {
        in_scope(self.languages.as_deref(), signals)
            && self.when.as_ref().is_none_or(|w| w.holds(signals))
    }
}

/// Whether a document's `lang` signal is in a stage's language scope (no scope: always).
pub fn in_scope(languages: Option<&[String]>, signals: &stages::Signals) -> bool {
    languages.is_none_or(|l| {
        signals
            .str(stages::LANG_SIGNAL)
            .is_some_and(|lang| l.iter().any(|x| x == lang))
    })
}

/// A unit of scheduling between barriers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Per-partition document processing.
    Map {
        index: usize,
        /// Global slot whose applier runs first.
        apply: Option<usize>,
        /// Map slots run in order.
        stages: Vec<usize>,
        /// Global slot whose collector sees the phase's output.
        collect: Option<usize>,
    },
    /// One step of a global stage, split into tasks.
    Step {
        slot: usize,
        step: usize,
        name: String,
    },
}

impl Phase {
    pub fn name(&self) -> String {
        match self {
            Phase::Map { index, .. } => format!("map{index}"),
            Phase::Step { name, .. } => name.clone(),
        }
    }
}

/// Every registry the engine knows.
pub fn registries() -> [&'static [&'static StageDef]; 2] {
    [stages::registry::REGISTRY, classifiers::REGISTRY]
}

/// The validated plan.
pub struct Plan {
    pub config: ConfigFile,
    pub base_dir: PathBuf,
    pub name: String,
    pub seed: u64,
    pub slots: Vec<StageSlot>,
    pub phases: Vec<Phase>,
    /// Input locations (paths relative to the pipeline file already resolved; URIs as given).
    pub inputs: Vec<String>,
    /// Output root: a local folder or an `s3://` URI.
    pub output: String,
    /// The dedup history (`[history] path`), resolved like the output.
    pub history: Option<String>,
}

impl Plan {
    /// Builds every stage and checks the whole configuration.
    pub fn build(
        config: ConfigFile,
        input: Option<&str>,
        output: Option<&str>,
        purpose: Purpose,
    ) -> Result<Plan, ConfigError> {
        Self::build_checked(config, input, output, purpose, true)
    }

    /// A plan to re-judge a finished run's stored signals (`curate mix`): stages are built
    /// with [`Purpose::Select`] and the inputs need not exist any more.
    pub fn for_selection(config: ConfigFile, output: Option<&str>) -> Result<Plan, ConfigError> {
        Self::build_checked(config, None, output, Purpose::Select, false)
    }

    fn build_checked(
        mut config: ConfigFile,
        input: Option<&str>,
        output: Option<&str>,
        purpose: Purpose,
        check_inputs: bool,
    ) -> Result<Plan, ConfigError> {
        if input.is_some() {
            // `--input` replaces every input of the file, a crawl listing included.
            config.raw.input.listing = None;
        }
        let base_dir = config.base_dir();
        let seed = config.raw.pipeline.seed;
        let name = config.raw.pipeline.name.clone().unwrap_or_else(|| {
            config
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pipeline".into())
        });
        let inputs = check_inputs_of(&config, input, &base_dir, check_inputs)?;
        check_input_columns(&config, &config.raw.input)?;
        let (output, history) = check_output(&config, output, &base_dir)?;
        let mut slots: Vec<StageSlot> = Vec::new();
        for (sname, value) in &config.raw.stages {
            let slot = build_slot(&config, sname, value, &base_dir, purpose, seed, &slots)?;
            slots.push(slot);
        }
        check_unique_signals(&config, &slots)?;
        let phases = plan_phases(&slots);
        Ok(Plan {
            config,
            base_dir,
            name,
            seed,
            slots,
            phases,
            inputs,
            output,
            history,
        })
    }

    /// Map phases only.
    pub fn map_phases(&self) -> impl Iterator<Item = &Phase> {
        self.phases
            .iter()
            .filter(|p| matches!(p, Phase::Map { .. }))
    }

    /// Index of the last map phase.
    pub fn last_map(&self) -> usize {
        self.map_phases().count() - 1
    }

    /// Signals present in the output of map phase `k`, in declaration order.
    pub fn signals_through(&self, k: usize) -> Vec<SignalSpec> {
        let mut out = Vec::new();
        for p in &self.phases {
            if let Phase::Map {
                index,
                apply,
                stages,
                ..
            } = p
            {
                if *index > k {
                    break;
                }
                if let Some(a) = apply {
                    out.extend(self.slots[*a].built.signals());
                }
                for s in stages {
                    out.extend(self.slots[*s].built.signals());
                }
            }
        }
        out
    }

    /// All signals of the pipeline.
    pub fn all_signals(&self) -> Vec<SignalSpec> {
        self.signals_through(self.last_map())
    }
}

/// Groups slots into map phases and global steps.
pub fn plan_phases(slots: &[StageSlot]) -> Vec<Phase> {
    let mut phases = Vec::new();
    let mut index = 0;
    let mut apply = None;
    let mut stages_in = Vec::new();
    for (i, s) in slots.iter().enumerate() {
        match &s.built {
            Built::Map(_) => stages_in.push(i),
            Built::Global(g) => {
                phases.push(Phase::Map {
                    index,
                    apply,
                    stages: std::mem::take(&mut stages_in),
                    collect: Some(i),
                });
                for (k, step) in g.steps().iter().enumerate() {
                    phases.push(Phase::Step {
                        slot: i,
                        step: k,
                        name: format!("{}.{}", s.name, step.name()),
                    });
                }
                index += 1;
                apply = Some(i);
            }
        }
    }
    phases.push(Phase::Map {
        index,
        apply,
        stages: stages_in,
        collect: None,
    });
    phases
}

/// `s3://`, `http(s)://` or `file://` URIs.
pub fn is_uri(s: &str) -> bool {
    s.starts_with("s3://")
        || s.starts_with("http://")
        || s.starts_with("https://")
        || s.starts_with("file://")
}

/// The `[input]` column keys: non-empty names, no column mapped twice, Parquet-only keys only
/// with Parquet input.
fn check_input_columns(
    config: &ConfigFile,
    input: &super::raw::InputSection,
) -> Result<(), ConfigError> {
    for (key, v) in [
        ("input.text_field", Some(&input.text_field)),
        ("input.id_field", Some(&input.id_field)),
        ("input.url_field", Some(&input.url_field)),
        ("input.date_field", input.date_field.as_ref()),
    ] {
        if v.is_some_and(|v| v.trim().is_empty()) {
            return Err(config.error(key, "empty column name"));
        }
    }
    if input.text_field == input.id_field || input.text_field == input.url_field {
        return Err(config.error(
            "input.text_field",
            format!("{:?} is also the id or url field", input.text_field),
        ));
    }
    if let Some(m) = &input.metadata_fields {
        let mut seen = std::collections::BTreeSet::new();
        for (i, f) in m.iter().enumerate() {
            let key = format!("input.metadata_fields[{i}]");
            if f.trim().is_empty() {
                return Err(config.error(&key, "empty column name"));
            }
            if [&input.text_field, &input.id_field, &input.url_field].contains(&f) {
                return Err(config.error(
                    &key,
                    format!("{f:?} is already mapped (text, id or url field)"),
                ));
            }
            if !seen.insert(f) {
                return Err(config.error(&key, format!("{f:?} is listed twice")));
            }
        }
    }
    let parquet_only = [
        ("input.date_field", input.date_field.is_some()),
        ("input.metadata_fields", input.metadata_fields.is_some()),
    ];
    if let Some(f) = input.format.filter(|f| *f != stages::read::Format::Parquet) {
        if let Some((key, _)) = parquet_only.iter().find(|(_, set)| *set) {
            return Err(config.error(
                key,
                format!("applies to Parquet input only (input.format is {f:?})"),
            ));
        }
    }
    Ok(())
}

/// A path of the pipeline file: URIs and absolute paths as given, others relative to the
/// file's folder.
fn resolve(base_dir: &Path, p: &str) -> String {
    if is_uri(p) || PathBuf::from(p).is_absolute() {
        p.to_string()
    } else {
        base_dir.join(p).to_string_lossy().into_owned()
    }
}

/// The inputs (the command line wins over the file), checked: local inputs must exist now,
/// so that a typo is a config error, not a failed run.
fn check_inputs_of(
    config: &ConfigFile,
    input: Option<&str>,
    base_dir: &Path,
    check_inputs: bool,
) -> Result<Vec<String>, ConfigError> {
    let raw = &config.raw;
    let inputs: Vec<String> = match input {
        Some(i) => vec![i.to_string()],
        None => raw
            .input
            .paths
            .iter()
            .map(|p| resolve(base_dir, p))
            .collect(),
    };
    // Local inputs must exist now: a typo is a config error, not a failed run.
    for (i, loc) in inputs.iter().enumerate() {
        if !check_inputs || (is_uri(loc) && !loc.starts_with("file://")) {
            continue;
        }
        let key = if input.is_some() {
            "--input".to_string()
        } else {
            format!("input.paths[{i}]")
        };
        let path = loc.strip_prefix("file://").unwrap_or(loc);
        let problem = if path.contains(['*', '?', '[']) {
            match glob::glob(path) {
                Err(e) => Some(format!("bad glob {path:?}: {e}")),
                Ok(mut g) => (!g.any(|p| p.is_ok_and(|p| p.is_file())))
                    .then(|| format!("no file matches {path:?}")),
            }
        } else {
            (!PathBuf::from(path).exists()).then(|| format!("input not found: {path}"))
        };
        if let Some(msg) = problem {
            return Err(if input.is_some() {
                ConfigError {
                    file: config.path.clone(),
                    line: None,
                    key,
                    message: msg,
                    from_cli: true,
                }
            } else {
                config.error(&key, msg)
            });
        }
    }
    if check_inputs && inputs.is_empty() && raw.input.listing.is_none() {
        return Err(config.error(
            "input.paths",
            "no input: give input.paths, input.listing or --input",
        ));
    }
    if raw.input.listing.is_some() && raw.input.base_uri.is_none() && input.is_none() {
        return Err(config.error(
            "input.base_uri",
            "input.listing needs a base_uri to resolve its keys against",
        ));
    }
    if raw.input.partition_bytes.0 < 4096 {
        return Err(config.error("input.partition_bytes", "must be at least 4096 bytes"));
    }
    Ok(inputs)
}

/// The output root and the dedup history, and the output and executor settings, checked.
fn check_output(
    config: &ConfigFile,
    output: Option<&str>,
    base_dir: &Path,
) -> Result<(String, Option<String>), ConfigError> {
    let raw = &config.raw;
    let output = match output {
        Some(o) => o.to_string(),
        None => resolve(base_dir, &raw.output.path),
    };
    if output.is_empty() {
        return Err(config.error("output.path", "empty output path"));
    }
    let history = match &raw.history {
        Some(h) if h.path.trim().is_empty() => {
            return Err(config.error("history.path", "empty history path"))
        }
        Some(h) => Some(resolve(base_dir, &h.path)),
        None => None,
    };
    if !(1..=22).contains(&raw.output.compression_level) {
        return Err(config.error(
            "output.compression_level",
            "expected a zstd level in 1..=22",
        ));
    }
    if raw.output.row_group_rows == 0 {
        return Err(config.error("output.row_group_rows", "must be positive"));
    }
    if raw.executor.batch_docs == 0 {
        return Err(config.error("executor.batch_docs", "must be positive"));
    }
    if raw.executor.queue_batches == 0 {
        return Err(config.error("executor.queue_batches", "must be positive"));
    }

    Ok((output, history))
}

/// The keys the engine reads from every `[stages.NAME]` section before the stage sees it
/// ([`engine_keys`] removes them), with what `curate stages KIND` says of each.
pub const ENGINE_KEYS: &[(&str, &str)] = &[
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
    (
        "when",
        "run the stage only on documents whose signals meet this condition, e.g. \"quality.hq between 0.2 and 0.8\"",
    ),
];

/// What the engine reads from a stage section, removed from it before the stage sees it.
type EngineKeys = (String, Mode, Option<Vec<String>>, Option<super::when::When>);

/// The engine's keys of a stage section, removed from `t`: the kind (`type`, default the
/// section's name), `mode`, `only_languages` and `when`.
fn engine_keys(
    config: &ConfigFile,
    key: &str,
    sname: &str,
    t: &mut toml::Table,
) -> Result<EngineKeys, ConfigError> {
    let kind = match t.remove("type") {
        None => sname.to_string(),
        Some(toml::Value::String(s)) => s,
        Some(_) => return Err(config.error(&format!("{key}.type"), "expected a string")),
    };
    let mode = match t.remove("mode") {
        None => Mode::Drop,
        Some(toml::Value::String(s)) if s == "drop" => Mode::Drop,
        Some(toml::Value::String(s)) if s == "tag" => Mode::Tag,
        Some(_) => return Err(config.error(&format!("{key}.mode"), "expected \"drop\" or \"tag\"")),
    };
    let languages = match t.remove("only_languages") {
        None => None,
        Some(toml::Value::Array(a)) => {
            let mut v = Vec::new();
            for (i, x) in a.iter().enumerate() {
                match x.as_str() {
                    Some(l) if !l.is_empty() => v.push(l.to_string()),
                    _ => {
                        return Err(config.error(
                            &format!("{key}.only_languages[{i}]"),
                            "expected a language code such as \"en\"",
                        ))
                    }
                }
            }
            Some(v)
        }
        Some(_) => {
            return Err(config.error(
                &format!("{key}.only_languages"),
                "expected a list of language codes, e.g. [\"en\"]",
            ))
        }
    };
    let when = match t.remove("when") {
        None => None,
        Some(v) => {
            let items: Vec<(String, Option<&str>)> = match &v {
                toml::Value::String(x) => vec![(format!("{key}.when"), Some(x.as_str()))],
                toml::Value::Array(a) => a
                    .iter()
                    .enumerate()
                    .map(|(i, x)| (format!("{key}.when[{i}]"), x.as_str()))
                    .collect(),
                _ => vec![(format!("{key}.when"), None)],
            };
            let mut all = Vec::new();
            for (k, x) in items {
                let x = x.ok_or_else(|| {
                    config.error(
                        &k,
                        "expected a condition such as \"quality.hq between 0.2 and 0.8\"",
                    )
                })?;
                all.push(super::when::When::parse(x).map_err(|m| config.error(&k, m))?);
            }
            Some(if all.len() == 1 {
                all.pop().expect("one")
            } else {
                super::when::When::All(all)
            })
        }
    };
    Ok((kind, mode, languages, when))
}

/// Builds the stage of section `[stages.NAME]` and checks its engine keys against it (`when`
/// reads only signals of `earlier` stages).
fn build_slot(
    config: &ConfigFile,
    sname: &str,
    value: &toml::Value,
    base_dir: &Path,
    purpose: Purpose,
    seed: u64,
    earlier: &[StageSlot],
) -> Result<StageSlot, ConfigError> {
    let regs = registries();
    let key = format!("stages.{}", key_segment(sname));
    // Signals are named `<stage>.<signal>`: a dot (or anything but a bare key) in a
    // stage name would make them ambiguous.
    if !is_bare_key(sname) {
        return Err(config.error(
            &key,
            "a stage name is letters, digits, `_` and `-` (its signals are named <stage>.<signal>)",
        ));
    }
    let toml::Value::Table(t) = value else {
        return Err(config.error(&key, "expected a table: [stages.NAME]"));
    };
    let mut t = t.clone();
    let (kind, mode, languages, when) = engine_keys(config, &key, sname, &mut t)?;
    let Some(def) = stages::registry::find(&regs, &kind) else {
        let mut known: Vec<&str> = regs.iter().flat_map(|r| r.iter()).map(|d| d.kind).collect();
        known.sort();
        let what = if t.is_empty() && kind == sname {
            key.clone()
        } else {
            format!("{key}.type")
        };
        return Err(config.error(
            &what,
            format!(
                "unknown stage type `{kind}`; known types: {}",
                known.join(", ")
            ),
        ));
    };
    let args = StageArgs {
        name: sname,
        table: &t,
        base_dir,
        purpose,
        seed,
    };
    let built = (def.build)(&args).map_err(|e| {
        let k = if e.key.is_empty() {
            key.clone()
        } else {
            format!("{key}.{}", e.key)
        };
        config.error(&k, e.message)
    })?;
    if languages.is_some() && !matches!(built, Built::Map(_)) {
        return Err(config.error(
            &format!("{key}.only_languages"),
            format!(
                "`{}` is a global stage (it compares documents with each other); \
                 `only_languages` applies to per-document stages only",
                def.kind
            ),
        ));
    }
    if let Some(w) = &when {
        if !matches!(built, Built::Map(_)) {
            return Err(config.error(
                &format!("{key}.when"),
                format!(
                    "`{}` is a global stage; `when` applies to per-document stages only",
                    def.kind
                ),
            ));
        }
        // The condition reads signals of earlier stages (or the document's own).
        for sig in w.signals() {
            let known = sig == stages::LANG_SIGNAL
                || earlier
                    .iter()
                    .any(|s| s.built.signals().iter().any(|x| x.name == sig));
            if !known {
                return Err(config.error(
                    &format!("{key}.when"),
                    format!("no earlier stage writes the signal `{sig}`"),
                ));
            }
        }
    }
    Ok(StageSlot {
        name: sname.to_string(),
        kind: def.kind,
        mode,
        languages,
        when,
        built,
    })
}

/// Signal names must be unique across stages: they become columns.
fn check_unique_signals(config: &ConfigFile, slots: &[StageSlot]) -> Result<(), ConfigError> {
    let mut seen: std::collections::HashMap<String, String> = Default::default();
    for s in slots {
        for sig in s.built.signals() {
            if let Some(other) = seen.insert(sig.name.to_string(), s.name.clone()) {
                return Err(config.error(
                    &format!("stages.{}", s.name),
                    format!(
                        "signal `{}` is also written by stage `{other}`: rename one of the stages",
                        sig.name
                    ),
                ));
            }
        }
    }

    Ok(())
}

#[cfg(test)]
mod engine_key_tests {
    use super::*;

    /// `ENGINE_KEYS` (what `curate stages` documents) is exactly what `engine_keys` takes out
    /// of a section.
    #[test]
    fn engine_keys_are_the_documented_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "[input]\n[output]\npath = \"out\"\n[stages.length]\ntype = \"filter.length\"\nmode = \"tag\"\nonly_languages = [\"en\"]\nwhen = \"quality.hq between 0.2 and 0.8\"\nmin_words = 5\n",
        )
        .unwrap();
        let cf = super::super::load(&path, &[]).unwrap();
        let toml::Value::Table(mut t) = cf.raw.stages["length"].clone() else {
            panic!("a table")
        };
        engine_keys(&cf, "stages.length", "length", &mut t).unwrap();
        let left: Vec<&str> = t.keys().map(String::as_str).collect();
        assert_eq!(left, ["min_words"]);
        let mut documented: Vec<&str> = ENGINE_KEYS.iter().map(|(k, _)| *k).collect();
        documented.sort();
        assert_eq!(documented, ["mode", "only_languages", "type", "when"]);
    }
}
