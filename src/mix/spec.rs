//! The `[mix]` section: one or several named mixes, resolved into [`MixSpec`]s.
//!
//! ```toml
//! [mix]                      # settings every mix inherits
//! tokenizer = "cl100k_base"
//! quality = "quality.hq"
//!
//! [mix.main]                 # Llama 3 shares are the default
//! total_tokens = 15_000_000_000_000
//!
//! [mix.anneal]               # its own shares, stricter quality, more repeats
//! general = 0.3
//! math = 0.35
//! code = 0.35
//! multilingual = 0
//! [mix.anneal.per_bucket.code]
//! min_quality = 0.8
//! max_repeats = 8
//! ```
//!
//! Every table under `[mix]` other than `special_tokens`, `per_bucket` and `stages` is a named
//! mix; without any, `[mix]` itself is the one mix `main`. A mix inherits every key of `[mix]`
//! and overrides what it sets (tables merge key by key). On the command line `--set
//! mix.KEY=V` applies to every mix, over their own values, and `--set mix.NAME.KEY=V` to one.

use std::collections::BTreeMap;

use super::plan::MixConfig;
use super::shards::Layout;
use stages::tokenize::TokenizerConfig;

use crate::config::raw::ByteSize;
use crate::config::{ConfigError, ConfigFile};

/// The name of the mix that `[mix]` makes when it names no mixes.
pub const DEFAULT_MIX: &str = "main";

/// Keys of a mix that the engine reads (the rest go to the planner, [`MixConfig`]).
const ENGINE_KEYS: &[&str] = &[
    "tokenizer",
    "pattern",
    "special_tokens",
    "bos",
    "eos",
    "bucket",
    "lang",
    "quality",
    "tokens",
    "source",
    "layout",
    "shard_size",
    "where",
    "ignore_stages",
    "stages",
    "seed",
];

/// Table-valued keys that are settings, not named mixes.
const TABLE_KEYS: &[&str] = &["special_tokens", "per_bucket", "stages"];

/// Where a document's source (for the report's per-source counts) comes from.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceRule {
    /// The Common Crawl snapshot in the input path (`CC-MAIN-2024-10`), else the input
    /// file's folder name.
    Crawl,
    /// The input file name.
    File,
    /// A string signal (e.g. one imported with `signal.import`).
    Signal(String),
}

/// One resolved mix.
#[derive(Clone, Debug)]
pub struct MixSpec {
    pub name: String,
    pub tokenizer: TokenizerConfig,
    /// The bucket signal (str).
    pub bucket: String,
    /// The language signal (str, default `lang`): tokens are counted per language, and
    /// buckets with language options (`per_bucket.multilingual.language_temperature`...)
    /// are planned by language.
    pub lang: String,
    /// Quality signal used for ranking and `min_quality`, mix-wide and per bucket.
    pub quality: Option<String>,
    pub bucket_quality: BTreeMap<String, String>,
    /// Stored token counts to use (default: a `tokenize.count` stage of the run whose
    /// tokenizer is this mix's).
    pub tokens: Option<String>,
    pub source: SourceRule,
    pub layout: Layout,
    pub shard_bytes: u64,
    /// Extra SQL condition over columns and signals.
    pub where_sql: Option<String>,
    /// Stages whose verdicts this mix does not apply.
    pub ignore_stages: Vec<String>,
    /// `[mix.NAME.stages.STAGE]` overrides of stage settings for this mix.
    pub stages: toml::Table,
    /// The planner's settings (shares, budget, sampling, repeats, per-bucket options).
    pub planner: MixConfig,
    /// The mix's table after inheritance (written next to its output).
    pub table: toml::Table,
}

/// Deep merge: keys of `over` win; tables merge recursively.
pub fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

fn is_mix_table(key: &str, v: &toml::Value) -> bool {
    v.is_table() && !TABLE_KEYS.contains(&key)
}

/// Names of the mixes a pipeline defines, in file order.
pub fn names(cf: &ConfigFile) -> Vec<String> {
    let Some(mix) = &cf.raw.mix else {
        return vec![DEFAULT_MIX.to_string()];
    };
    let named: Vec<String> = mix
        .iter()
        .filter(|(k, v)| is_mix_table(k, v))
        .map(|(k, _)| k.clone())
        .collect();
    if named.is_empty() {
        vec![DEFAULT_MIX.to_string()]
    } else {
        named
    }
}

/// Resolves every mix of a pipeline (or only those in `only`).
pub fn resolve(cf: &ConfigFile, only: &[String]) -> Result<Vec<MixSpec>, ConfigError> {
    let empty = toml::Table::new();
    let mix = cf.raw.mix.as_ref().unwrap_or(&empty);
    let all = names(cf);
    for n in only {
        if !all.contains(n) {
            return Err(ConfigError {
                file: cf.path.clone(),
                line: None,
                key: "--mix".into(),
                message: format!("no mix named {n:?}; mixes: {}", all.join(", ")),
                from_cli: true,
            });
        }
    }
    let shared: toml::Table = mix
        .iter()
        .filter(|(k, v)| !is_mix_table(k, v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let named = mix.iter().any(|(k, v)| is_mix_table(k, v));
    // `--set mix.KEY=V` (KEY not a mix) beats a mix's own value.
    let cli: Vec<Vec<String>> = cf
        .overridden
        .iter()
        .filter_map(|k| k.strip_prefix("mix."))
        .map(|k| k.split('.').map(str::to_string).collect::<Vec<_>>())
        .filter(|parts| !all.contains(&parts[0]) || !named)
        .collect();
    let mut out = Vec::new();
    for name in all {
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let mut table = shared.clone();
        let own = if named {
            mix.get(&name).and_then(|v| v.as_table()).cloned()
        } else {
            None
        };
        if let Some(own) = &own {
            merge(&mut table, own);
        }
        for path in &cli {
            if let Some(v) = get_path(&shared, path) {
                set_path(&mut table, path, v.clone());
            }
        }
        // Errors point at the mix's own key when it set it, else at the shared one.
        let locate = |key: &str| -> String {
            let first = key.split('.').next().unwrap_or(key);
            if named && own.as_ref().is_some_and(|o| o.contains_key(first)) {
                format!("mix.{name}.{key}")
            } else {
                format!("mix.{key}")
            }
        };
        out.push(spec(cf, &name, table, &locate)?);
    }
    Ok(out)
}

fn get_path<'a>(t: &'a toml::Table, path: &[String]) -> Option<&'a toml::Value> {
    let (first, rest) = path.split_first()?;
    let v = t.get(first)?;
    if rest.is_empty() {
        Some(v)
    } else {
        get_path(v.as_table()?, rest)
    }
}

fn set_path(t: &mut toml::Table, path: &[String], v: toml::Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        t.insert(first.clone(), v);
        return;
    }
    let e = t
        .entry(first.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(sub) = e {
        set_path(sub, rest, v);
    }
}

fn spec(
    cf: &ConfigFile,
    name: &str,
    table: toml::Table,
    locate: &dyn Fn(&str) -> String,
) -> Result<MixSpec, ConfigError> {
    let err = |key: &str, msg: String| cf.error(&locate(key), msg);
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(cf.error(
            &format!("mix.{name}"),
            "a mix name may use letters, digits, '_' and '-' (it names a folder)",
        ));
    }
    let string = |key: &str| -> Result<Option<String>, ConfigError> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(err(key, "expected a string".into())),
        }
    };
    // Tokenizer: the keys of a TokenizerConfig.
    let mut tok = toml::Table::new();
    for k in ["tokenizer", "pattern", "special_tokens", "bos", "eos"] {
        if let Some(v) = table.get(k) {
            tok.insert(k.to_string(), v.clone());
        }
    }
    tok.entry("tokenizer")
        .or_insert_with(|| toml::Value::String("cl100k_base".into()));
    let tokenizer: TokenizerConfig =
        stages::config::parse_table(&tok).map_err(|e| err(&e.key, e.message))?;

    let layout = match string("layout")?.as_deref() {
        None | Some("per_bucket") => Layout::PerBucket,
        Some("mixed") => Layout::Mixed,
        Some(o) => {
            return Err(err(
                "layout",
                format!("{o:?}: expected \"per_bucket\" or \"mixed\""),
            ))
        }
    };
    let shard_bytes = match table.get("shard_size") {
        None => 1 << 30,
        Some(v) => {
            let b: ByteSize = v
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| err("shard_size", e.message().to_string()))?;
            if b.0 < 1024 {
                return Err(err("shard_size", "must be at least 1 kB".into()));
            }
            b.0
        }
    };
    let source = match string("source")?.as_deref() {
        None | Some("crawl") => SourceRule::Crawl,
        Some("file") => SourceRule::File,
        Some("") => return Err(err("source", "empty signal name".into())),
        Some(s) => SourceRule::Signal(s.to_string()),
    };
    let ignore_stages = match table.get("ignore_stages") {
        None => Vec::new(),
        Some(toml::Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| err(&format!("ignore_stages[{i}]"), "expected a string".into()))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(err(
                "ignore_stages",
                "expected a list of stage names".into(),
            ))
        }
    };
    for (i, s) in ignore_stages.iter().enumerate() {
        if !cf.raw.stages.contains_key(s) {
            return Err(err(
                &format!("ignore_stages[{i}]"),
                format!("no stage named {s:?}"),
            ));
        }
    }
    let stages = match table.get("stages") {
        None => toml::Table::new(),
        Some(toml::Value::Table(t)) => {
            for (s, v) in t {
                if !cf.raw.stages.contains_key(s) {
                    return Err(err(&format!("stages.{s}"), format!("no stage named {s:?}")));
                }
                if !v.is_table() {
                    return Err(err(&format!("stages.{s}"), "expected a table".into()));
                }
            }
            t.clone()
        }
        Some(_) => return Err(err("stages", "expected a table of stage overrides".into())),
    };
    let seed = match table.get("seed") {
        None => cf.raw.pipeline.seed,
        Some(v) => v
            .as_integer()
            .filter(|&i| i >= 0)
            .ok_or_else(|| err("seed", "expected a non-negative integer".into()))?
            as u64,
    };

    // The planner gets the rest; per-bucket quality signals are the engine's.
    let mut plan_table: toml::Table = table
        .iter()
        .filter(|(k, _)| !ENGINE_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut bucket_quality = BTreeMap::new();
    if let Some(toml::Value::Table(pb)) = plan_table.get_mut("per_bucket") {
        for (b, o) in pb.iter_mut() {
            if let toml::Value::Table(o) = o {
                match o.remove("quality") {
                    None => {}
                    Some(toml::Value::String(s)) if !s.is_empty() => {
                        bucket_quality.insert(b.clone(), s);
                    }
                    Some(_) => {
                        return Err(err(
                            &format!("per_bucket.{b}.quality"),
                            "expected a signal name".into(),
                        ))
                    }
                }
            }
        }
    }
    let planner = MixConfig::from_table(&plan_table, seed).map_err(|e| err(&e.key, e.message))?;
    for b in planner.shares.keys() {
        if !b
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(err(
                b,
                "a bucket name may use letters, digits, '_' and '-' (it names shard files)".into(),
            ));
        }
    }
    Ok(MixSpec {
        name: name.to_string(),
        tokenizer,
        bucket: string("bucket")?.unwrap_or_else(|| stages::mix::BUCKET_SIGNAL.to_string()),
        lang: string("lang")?
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| stages::LANG_SIGNAL.to_string()),
        quality: string("quality")?.filter(|s| !s.is_empty()),
        bucket_quality,
        tokens: string("tokens")?.filter(|s| !s.is_empty()),
        source,
        layout,
        shard_bytes,
        where_sql: string("where")?.filter(|s| !s.trim().is_empty()),
        ignore_stages,
        stages,
        planner,
        table,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str =
        "[input]\npaths = [\"in.jsonl\"]\n[output]\npath = \"out\"\n[stages.length]\ntype = \"filter.length\"\nmin_words = 5\n";

    fn load(text: &str, set: &[&str]) -> Result<ConfigFile, ConfigError> {
        let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        crate::config::parse(
            std::path::Path::new("p.toml"),
            format!("{BASE}{text}"),
            &set,
        )
    }

    #[test]
    fn single_and_named_mixes_with_inheritance() {
        let cf = load("", &[]).unwrap();
        let m = resolve(&cf, &[]).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].name, "main");
        assert_eq!(m[0].tokenizer.tokenizer, "cl100k_base");
        assert_eq!(m[0].planner.shares["general"], 0.5);

        let cf = load(
            "[mix]\nquality = 'q.score'\nmax_repeats = 2\nshard_size = '10MB'\n[mix.main]\n[mix.anneal]\ngeneral = 0.2\nmath = 0.4\ncode = 0.4\nmultilingual = 0\nmax_repeats = 8\n[mix.anneal.per_bucket.code]\nmin_quality = 0.9\nquality = 'codeq.score'\n[mix.anneal.stages.length]\nmin_words = 50\n",
            &[],
        )
        .unwrap();
        assert_eq!(names(&cf), ["main", "anneal"]);
        let m = resolve(&cf, &[]).unwrap();
        let (main, anneal) = (&m[0], &m[1]);
        assert_eq!(main.quality.as_deref(), Some("q.score"));
        assert_eq!(main.planner.max_repeats, 2);
        assert_eq!(main.shard_bytes, 10_000_000);
        assert_eq!(anneal.planner.max_repeats, 8);
        assert_eq!(anneal.quality.as_deref(), Some("q.score"));
        assert_eq!(anneal.bucket_quality["code"], "codeq.score");
        assert_eq!(anneal.planner.per_bucket["code"].min_quality, Some(0.9));
        assert!(!anneal.planner.shares.contains_key("multilingual"));
        assert!((anneal.planner.shares["math"] - 0.4).abs() < 1e-12);
        assert_eq!(anneal.stages["length"]["min_words"].as_integer(), Some(50));
        let only = resolve(&cf, &["anneal".to_string()]).unwrap();
        assert_eq!(only.len(), 1);
        assert!(resolve(&cf, &["nope".to_string()]).is_err());
    }

    #[test]
    fn command_line_beats_a_mix_own_value() {
        let text = "[mix.main]\ncode = 0.17\n[mix.other]\ncode = 0.3\ngeneral = 0.7\n";
        let cf = load(text, &["mix.code=0.25", "mix.other.general=0.5"]).unwrap();
        let m = resolve(&cf, &[]).unwrap();
        let share = |i: usize, b: &str| m[i].planner.shares[b] * m[i].planner.share_sum;
        assert!((share(0, "code") - 0.25).abs() < 1e-12);
        assert!((share(1, "code") - 0.25).abs() < 1e-12);
        assert!((share(1, "general") - 0.5).abs() < 1e-12);
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let e = resolve(&load("[mix]\ncode = 1.5\n", &[]).unwrap(), &[]).unwrap_err();
        assert_eq!(e.key, "mix.code");
        assert_eq!(e.line, Some(9));
        let e = resolve(&load("[mix.main]\nlayout = 'zigzag'\n", &[]).unwrap(), &[]).unwrap_err();
        assert_eq!(e.key, "mix.main.layout");
        let e = resolve(
            &load("[mix]\nignore_stages = ['nope']\n", &[]).unwrap(),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.key, "mix.ignore_stages[0]");
        let e = resolve(
            &load("[mix.a]\n[mix.a.stages.nope]\nx = 1\n", &[]).unwrap(),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.key, "mix.a.stages.nope");
        let e = resolve(&load("[mix]\ntokenizer = 3\n", &[]).unwrap(), &[]).unwrap_err();
        assert_eq!(e.key, "mix.tokenizer");
        let e = resolve(&load("", &["mix.code=2"]).unwrap(), &[]).unwrap_err();
        assert!(e.from_cli, "{e}");
        let e = resolve(&load("[mix.'a b']\n", &[]).unwrap(), &[]).unwrap_err();
        assert_eq!(e.key, "mix.a b");
    }
}
