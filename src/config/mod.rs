//! Configuration: the TOML pipeline file as written ([`raw`]), command-line `--set` overrides,
//! and the validated [`plan`] that the runner trusts.
//!
//! Every mistake is reported before any work starts, naming the file, line and dotted key
//! (`pipelines/x.toml:14: stages.gopher_quality.min_words: invalid type ...`), and the CLI exits
//! with code 2.

pub mod plan;
pub mod raw;
pub mod when;

use std::fmt;
use std::path::{Path, PathBuf};

pub use plan::Plan;
pub use raw::{ByteSize, RawConfig};

/// A configuration error with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line in the file, when the key is written there.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `stages.gopher_quality.min_words`.
    pub key: String,
    pub message: String,
    /// The key was set on the command line (`--set`).
    pub from_cli: bool,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match (self.from_cli, self.line, self.key.is_empty()) {
            (true, _, _) if self.key.starts_with("--") => {
                write!(f, "{}: {}", self.key, self.message)
            }
            (true, _, _) => write!(f, "{file}: --set {}: {}", self.key, self.message),
            (false, Some(l), false) => write!(f, "{file}:{l}: {}: {}", self.key, self.message),
            (false, Some(l), true) => write!(f, "{file}:{l}: {}", self.message),
            (false, None, false) => write!(f, "{file}: {}: {}", self.key, self.message),
            (false, None, true) => write!(f, "{file}: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A loaded pipeline file: its text, the table after overrides, and the strict sections.
#[derive(Debug)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub text: String,
    /// The document after `--set` overrides (what the run uses; written as `config.toml`).
    pub table: toml::Table,
    pub raw: RawConfig,
    /// Keys set on the command line.
    pub overridden: Vec<String>,
}

impl ConfigFile {
    /// Folder against which relative paths in the file resolve.
    pub fn base_dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// An error at a dotted key, located in the file (or attributed to `--set`).
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let from_cli = self.overridden.iter().any(|k| {
            key == k || key.starts_with(&format!("{k}.")) || k.starts_with(&format!("{key}."))
        });
        ConfigError {
            file: self.path.clone(),
            line: if from_cli {
                None
            } else {
                locate(&self.text, key)
            },
            key: key.to_string(),
            message: message.into(),
            from_cli,
        }
    }

    /// The resolved configuration as TOML text.
    pub fn resolved_toml(&self) -> String {
        toml::to_string(&self.table).unwrap_or_default()
    }
}

/// Loads a pipeline file and applies `--set key=value` overrides.
pub fn load(path: &Path, overrides: &[String]) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        key: String::new(),
        message: format!("cannot read pipeline file: {e}"),
        from_cli: false,
    })?;
    parse(path, text, overrides)
}

/// Parses pipeline text as if read from `path` (relative paths resolve against its folder;
/// errors name it), then applies `--set` overrides. `curate mix` reads a run's stored
/// `config.toml` this way, against the pipeline file's folder.
pub fn parse(path: &Path, text: String, overrides: &[String]) -> Result<ConfigFile, ConfigError> {
    let err = |line, key: &str, message: String| ConfigError {
        file: path.to_path_buf(),
        line,
        key: key.into(),
        message,
        from_cli: false,
    };
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map(|s| line_of(&text, s.start));
        err(line, "", e.message().trim().to_string())
    })?;
    let mut overridden = Vec::new();
    for o in overrides {
        let Some((key, value)) = o.split_once('=') else {
            return Err(ConfigError {
                file: path.to_path_buf(),
                line: None,
                key: o.clone(),
                message: "expected key=value".into(),
                from_cli: true,
            });
        };
        // `filters.NAME.key` (the spelling of issue 9's examples) is `stages.NAME.key`.
        let key = key.trim();
        let aliased = key.strip_prefix("filters.").map(|k| format!("stages.{k}"));
        let key = aliased.as_deref().unwrap_or(key);
        set_path(&mut table, key, parse_value(value.trim())).map_err(|m| ConfigError {
            file: path.to_path_buf(),
            line: None,
            key: key.into(),
            message: m,
            from_cli: true,
        })?;
        overridden.push(key.to_string());
    }
    let cf = ConfigFile {
        path: path.to_path_buf(),
        text,
        table,
        raw: placeholder(),
        overridden,
    };
    cf.with_table(cf.table.clone())
}

impl ConfigFile {
    /// The same file with another (edited) table: re-validates the strict sections.
    pub fn with_table(&self, table: toml::Table) -> Result<ConfigFile, ConfigError> {
        let mut cf = ConfigFile {
            path: self.path.clone(),
            text: self.text.clone(),
            table,
            raw: placeholder(),
            overridden: self.overridden.clone(),
        };
        let raw: RawConfig = serde_path_to_error::deserialize(toml::Value::Table(cf.table.clone()))
            .map_err(|e| {
                // The path as a dotted key, each name quoted when it is not a bare key.
                let mut p = String::new();
                let mut last = None;
                for seg in e.path().iter() {
                    use serde_path_to_error::Segment;
                    match seg {
                        Segment::Seq { index } => p.push_str(&format!("[{index}]")),
                        Segment::Map { key } | Segment::Enum { variant: key } => {
                            if !p.is_empty() {
                                p.push('.');
                            }
                            p.push_str(&key_segment(key));
                            last = Some(key.clone());
                        }
                        Segment::Unknown => {}
                    }
                }
                let msg = e.into_inner().to_string();
                let key = match unknown_field(&msg) {
                    Some(f) if last.as_ref() == Some(&f) => p,
                    Some(f) if p.is_empty() => key_segment(&f),
                    Some(f) => format!("{p}.{}", key_segment(&f)),
                    None => p,
                };
                let key = if key.is_empty() {
                    missing_section(&msg).unwrap_or_default()
                } else {
                    key
                };
                cf.error(&key, msg.trim().to_string())
            })?;
        cf.raw = raw;
        Ok(cf)
    }
}

/// Validates pipeline text the way `curate check` does (every stage built for selection), for
/// the config fuzz target and tests: a plan, or the located error.
pub fn check_text(text: &str) -> Result<(), ConfigError> {
    let cf = parse(Path::new("fuzz.toml"), text.to_string(), &[])?;
    Plan::build(cf, None, None, stages::Purpose::Select).map(|_| ())
}

fn placeholder() -> RawConfig {
    toml::from_str("[input]\n[output]\npath = ''").expect("placeholder config parses")
}

fn unknown_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

fn missing_section(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// Parses a `--set` value as TOML (number, bool, string, array, inline table), else a string.
fn parse_value(v: &str) -> toml::Value {
    match format!("v = {v}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").expect("key v"),
        Err(_) => toml::Value::String(v.to_string()),
    }
}

fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty key segment".into());
    }
    let mut cur = table;
    for p in &parts[..parts.len() - 1] {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(format!("`{p}` is not a table")),
        };
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Finds the line where a dotted key (with `[n]` indices) is written.
pub fn locate(text: &str, key: &str) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item: &toml_edit::Item = doc.as_item();
    let mut best: Option<usize> = None;
    for seg in split_key(key) {
        let next = match seg {
            Seg::Key(k) => {
                let (kk, v) = match item {
                    toml_edit::Item::Table(t) => t.get_key_value(&k)?,
                    toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => {
                        t.get_key_value(&k)?
                    }
                    _ => return best,
                };
                if let Some(s) = kk.span() {
                    best = Some(line_of(text, s.start));
                }
                v
            }
            Seg::Index(i) => match item {
                toml_edit::Item::Value(toml_edit::Value::Array(a)) => {
                    let v = a.get(i)?;
                    if let Some(s) = v.span() {
                        best = Some(line_of(text, s.start));
                    }
                    return best;
                }
                toml_edit::Item::ArrayOfTables(a) => a.get(i).map(|_| item)?,
                _ => return best,
            },
        };
        if let Some(s) = next.span() {
            best = Some(line_of(text, s.start));
        }
        item = next;
    }
    best
}

/// A key name as one segment of a dotted key path: bare when TOML allows it, else quoted the
/// way TOML writes it (`""`, `"a.b"`), so that an error always names the key and [`locate`]
/// can find it.
pub(crate) fn key_segment(name: &str) -> String {
    if is_bare_key(name) {
        return name.to_string();
    }
    let mut q = String::with_capacity(name.len() + 2);
    q.push('"');
    for c in name.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c if c.is_control() => q.push_str(&format!("\\u{:04X}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// Whether TOML writes a key bare: letters, digits, `_` and `-`.
pub(crate) fn is_bare_key(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

enum Seg<'a> {
    Key(std::borrow::Cow<'a, str>),
    Index(usize),
}

/// Splits a dotted key path (`stages.g.list[1]`, `output."a.b"`) into keys and array indices.
fn split_key(key: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    let mut rest = key;
    while !rest.is_empty() {
        if rest.starts_with(['"', '\'']) {
            // A quoted segment runs to its closing quote; TOML unescapes it.
            let quote = rest.as_bytes()[0];
            let mut end = rest.len();
            let mut escaped = false;
            for (i, b) in rest.bytes().enumerate().skip(1) {
                if b == quote && !escaped {
                    end = i + 1;
                    break;
                }
                escaped = quote == b'"' && b == b'\\' && !escaped;
            }
            let name = toml_edit::Key::parse(&rest[..end])
                .ok()
                .and_then(|mut keys| (keys.len() == 1).then(|| keys.remove(0)))
                .map(|k| k.get().to_string())
                .unwrap_or_default();
            out.push(Seg::Key(name.into()));
            rest = &rest[end..];
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end > 0 {
                out.push(Seg::Key(rest[..end].into()));
            }
            rest = &rest[end..];
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let e = stripped.find(']').unwrap_or(stripped.len());
            if let Ok(i) = stripped[..e].parse() {
                out.push(Seg::Index(i));
            }
            rest = stripped.get(e + 1..).unwrap_or("");
        }
        rest = rest.strip_prefix('.').unwrap_or(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("p.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    const BASE: &str =
        "[pipeline]\nseed = 1\n\n[input]\npaths = [\"a.jsonl\"]\n\n[output]\npath = \"out\"\n";

    #[test]
    fn unknown_and_mistyped_keys_are_located() {
        let d = tempfile::tempdir().unwrap();
        let e = load(&write(d.path(), &format!("{BASE}bogus = 1\n")), &[]).unwrap_err();
        assert_eq!(e.key, "output.bogus");
        assert_eq!(e.line, Some(9));
        let e = load(
            &write(
                d.path(),
                "[pipeline]\nseed = \"x\"\n[input]\n[output]\npath='o'\n",
            ),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.key, "pipeline.seed");
        assert_eq!(e.line, Some(2));
        let e = load(&write(d.path(), "[input]\n"), &[]).unwrap_err();
        assert_eq!(e.key, "output", "{e}");
        let e = load(&write(d.path(), "[input\n"), &[]).unwrap_err();
        assert_eq!(e.line, Some(1));
    }

    #[test]
    fn unknown_keys_that_are_not_bare_are_named_and_located() {
        // Found by the config fuzz target: `''='='` gave an error with neither key nor line.
        let e = check_text("''='='").unwrap_err();
        assert_eq!(e.key, "\"\"", "{e}");
        assert_eq!(e.line, Some(1), "{e}");
        let t = format!("{BASE}\"a.b\" = 1\n");
        let e = check_text(&t).unwrap_err();
        assert_eq!(e.key, "output.\"a.b\"", "{e}");
        assert_eq!(e.line, Some(9), "{e}");
        let e = check_text(&format!("{BASE}\"q\\\"x\" = 1\n")).unwrap_err();
        assert_eq!(e.key, "output.\"q\\\"x\"", "{e}");
        assert_eq!(e.line, Some(9), "{e}");
    }

    #[test]
    fn key_paths_split_on_dots_outside_quotes() {
        let t = "[stages.\"a.b\"]\nlist = [1, 2]\n\n[x]\n\"\" = { y = 1 }\n";
        assert_eq!(locate(t, "stages.\"a.b\".list[1]"), Some(2));
        assert_eq!(locate(t, "x.\"\".y"), Some(5));
        assert_eq!(locate(t, "stages.'a.b'"), Some(1));
        assert_eq!(key_segment("min_words"), "min_words");
        assert_eq!(key_segment(""), "\"\"");
        assert_eq!(key_segment("a\"b\\\n"), "\"a\\\"b\\\\\\u000A\"");
        // Unterminated quotes and stray brackets end the path instead of looping.
        assert_eq!(locate(t, "stages.\"a.b"), None);
        assert_eq!(split_key("stages[.][").len(), 1);
        assert_eq!(split_key("a.'b.c'.\"d").len(), 3);
    }

    #[test]
    fn overrides_apply_and_are_validated() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), BASE);
        let c = load(
            &p,
            &["pipeline.seed=7".into(), "stages.x.min_words=100".into()],
        )
        .unwrap();
        assert_eq!(c.raw.pipeline.seed, 7);
        assert_eq!(c.raw.stages["x"]["min_words"].as_integer(), Some(100));
        let c = load(&p, &["filters.x.min_words=50".into()]).unwrap();
        assert_eq!(c.raw.stages["x"]["min_words"].as_integer(), Some(50));
        assert_eq!(c.overridden, ["stages.x.min_words"]);
        let e = load(&p, &["executor.threads=many".into()]).unwrap_err();
        assert!(e.from_cli);
        assert_eq!(e.key, "executor.threads");
    }

    #[test]
    fn locate_nested_keys() {
        let t = "[a]\nx = 1\n\n[stages.g]\ntype = \"t\"\nmin = 3\nlist = [1,\n 2]\n";
        assert_eq!(locate(t, "a.x"), Some(2));
        assert_eq!(locate(t, "stages.g.min"), Some(6));
        assert_eq!(locate(t, "stages.g.list[1]"), Some(8));
        assert_eq!(locate(t, "stages.g"), Some(4));
    }

    /// A valid pipeline touching every engine section, the seed of the mutation test.
    const SEED: &str = "[pipeline]\nname = \"fz\"\nseed = 3\n\n[input]\npaths = [\"Cargo.toml\"]\nformat = \"jsonl\"\npartition_bytes = \"64MB\"\n\n[output]\npath = \"out\"\nformat = \"parquet\"\ncompression_level = 3\n\n[executor]\nthreads = 2\nmemory = \"1GiB\"\n\n[stages.length]\ntype = \"filter.length\"\nmode = \"tag\"\nmin_words = 50\nmax_chars = 100000\n\n[slurm]\narray_size = 4\n";

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 400, ..Default::default() })]
        /// Mutated configs (bytes deleted, duplicated, replaced by TOML punctuation or other
        /// values) give a plan or an error that names a key or a line; never a panic.
        #[test]
        fn mutated_configs_fail_cleanly(
            muts in proptest::collection::vec((0usize..400, 0usize..12, 0usize..8), 1..6)
        ) {
            const PIECES: &[&str] = &["=", "[", "]", "\"", "\n", ".", "-1", "1e309", "[[stages.x]]", "type = 3", "min_words = \"ten\"", "{"];
            let mut t = SEED.as_bytes().to_vec();
            for (pos, kind, piece) in muts {
                let at = pos % (t.len() + 1);
                match kind % 3 {
                    0 => { let end = (at + piece + 1).min(t.len()); t.drain(at..end); }
                    1 => { let p = PIECES[(kind + piece) % PIECES.len()]; t.splice(at..at, p.bytes()); }
                    _ => { let end = (at + 8).min(t.len()); let dup = t[at..end].to_vec(); t.splice(at..at, dup); }
                }
            }
            let Ok(text) = String::from_utf8(t) else { return Ok(()); };
            if let Err(e) = check_text(&text) {
                proptest::prop_assert!(
                    e.line.is_some() || !e.key.is_empty(),
                    "error without location: {e}"
                );
            }
        }
    }

    #[test]
    fn seed_config_is_valid() {
        check_text(SEED).unwrap();
    }
}
