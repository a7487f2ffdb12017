//! Collects the doc comments of the stage crates' config structs, so that `curate stages KIND`
//! prints each key's documentation from the struct that parses it (the keys, types and
//! defaults come from the struct at run time: `stages::describe`).
//!
//! Writes `$OUT_DIR/config_docs.rs`: `CONFIG_DOCS`, one entry per top-level struct that
//! derives `Deserialize` in `stages/src` and `classifiers/src`, named by its Rust path (as
//! `std::any::type_name` gives it), with `(key, doc)` per field (`#[serde(rename)]` applied).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let mut out = String::from(
        "/// `(Rust path of a config struct, [(TOML key, doc comment)])`, from the sources.\n\
         pub static CONFIG_DOCS: &[(&str, &[(&str, &str)])] = &[\n",
    );
    for krate in ["stages", "classifiers"] {
        let src = Path::new(krate).join("src");
        println!("cargo:rerun-if-changed={}", src.display());
        let mut files = Vec::new();
        walk(&src, &mut files);
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            scan(&text, &module_path(krate, &src, &f), &mut out);
        }
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("config_docs.rs");
    std::fs::write(dest, out).expect("write config_docs.rs");
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `stages/src/filter/length.rs` -> `stages::filter::length`; `mod.rs` and `lib.rs` name
/// their folder.
fn module_path(krate: &str, src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts = vec![krate.to_string()];
    for c in rel.components() {
        let c = c.as_os_str().to_string_lossy();
        if c != "mod" && c != "lib" {
            parts.push(c.into_owned());
        }
    }
    parts.join("::")
}

/// Appends the documented fields of every top-level `Deserialize` struct of one file.
fn scan(text: &str, module: &str, out: &mut String) {
    let mut derives_deserialize = false;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("#[derive(") {
            derives_deserialize = line.contains("Deserialize");
            continue;
        }
        let Some(rest) = line
            .strip_prefix("pub struct ")
            .or_else(|| line.strip_prefix("struct "))
            .or_else(|| line.strip_prefix("pub(crate) struct "))
        else {
            if !line.starts_with("#[") && !line.starts_with("///") {
                derives_deserialize = false;
            }
            continue;
        };
        let Some(name) = rest.strip_suffix(" {") else {
            continue;
        };
        if !std::mem::take(&mut derives_deserialize) {
            continue;
        }
        let mut fields = String::new();
        let (mut doc, mut rename) = (Vec::<String>::new(), None::<String>);
        for l in lines.by_ref() {
            if l == "}" {
                break;
            }
            let t = l.trim();
            if let Some(d) = t.strip_prefix("///") {
                doc.push(d.trim().to_string());
            } else if t.starts_with("#[serde(") {
                if let Some(r) = t.split("rename = \"").nth(1) {
                    rename = r.split('"').next().map(str::to_string);
                }
            } else if let Some(field) = field_name(t) {
                let key = rename.take().unwrap_or_else(|| field.to_string());
                let _ = write!(fields, "({key:?}, {:?}), ", doc.join(" "));
                doc.clear();
            }
        }
        let _ = writeln!(out, "    ({:?}, &[{fields}]),", format!("{module}::{name}"));
    }
}

/// The name of a field declaration line (`pub min_chars: Option<u64>,`).
fn field_name(line: &str) -> Option<&str> {
    let l = line
        .strip_prefix("pub(crate) ")
        .or_else(|| line.strip_prefix("pub "))
        .unwrap_or(line);
    let (name, _) = l.split_once(':')?;
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    ok.then_some(name)
}
