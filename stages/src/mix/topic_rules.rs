//! `mix.topic_rules`: built-in math and code signals for the mix buckets, with no model.
//!
//! Writes `<stage>.math` and `<stage>.code`, each the share of a document's non-empty lines
//! that look like formulas or like source code. Named `topic`, the stage writes the
//! `topic.math` / `topic.code` scores that `mix.bucket` reads by default, so a pipeline
//! without a trained topic classifier (the quickstart) still fills the math and code buckets.
//! A fastText or ONNX topic model (pipelines/llama3.toml) is the better judge on real crawls;
//! these rules are the cheap fallback and a cascade's first step.
//!
//! - A **code line** ends like a statement or block (`;`, `{`, `}`), opens with a REPL prompt
//!   or a lower-case keyword that starts statements in common languages (`def`, `fn`,
//!   `import`, `return`...) and does not end like a sentence, or is dense in the symbols that
//!   code uses and prose does not (`(){}[]<>=_*&|!#/\+%^~@;`).
//! - A **math line** (not already code) holds TeX (`$...$`, `$$`, `\frac`-style commands, as
//!   `extract.html` writes MathJax, KaTeX and MathML) or at least two mathematical symbols
//!   (`∑ √ ∫ ≤ ≠ ± π ∞ ∈ ² ...`).
//!
//! Shares of lines, not of characters: a long formula should not outweigh the prose around it.

use serde::Deserialize;

use crate::config::{ConfigError, StageArgs};
use crate::declare::{Declare, Declared, Sig, F64};
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::Document;

/// `[stages.topic]` of type `mix.topic_rules`: no settings (thresholds live in `mix.bucket`).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TopicRulesConfig {}

pub struct TopicRules {
    name: String,
    sig_math: Sig<F64>,
    sig_code: Sig<F64>,
    declared: Declared,
}

pub static DEF: StageDef = StageDef {
    kind: "mix.topic_rules",
    about:
        "Built-in math and code scores (share of formula lines, of code lines) for the mix buckets",
    example: "",
    build,
};

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let _: TopicRulesConfig = args.parse()?;
    let mut d = Declare::new(args.name);
    let sig_math = d.signal(
        "math",
        "share of non-empty lines with a formula (TeX or math symbols)",
    );
    let sig_code = d.signal(
        "code",
        "share of non-empty lines that look like source code",
    );
    Ok(Built::Map(Box::new(TopicRules {
        name: args.name.to_string(),
        sig_math,
        sig_code,
        declared: d.finish(),
    })))
}

/// Words that open statements in C, C++, Go, Java, JavaScript, Python, Rust, shell and SQL
/// (case-sensitive: a sentence that opens with "For" or "Import" is prose).
const KEYWORDS: &[&str] = &[
    "def", "fn", "let", "import", "from", "return", "class", "struct", "impl", "use", "pub",
    "const", "var", "function", "func", "package", "if", "elif", "else", "for", "while", "match",
    "try", "except", "catch", "print", "echo", "#include", "#define", "static", "void", "int",
    "mut", "async", "await", "yield", "lambda", "raise", "throw", "switch", "case", "export",
    "public", "private", "with", "assert", "typedef", "enum", "trait", "mod", "sudo", "cd",
    "SELECT", "FROM", "WHERE", "GROUP", "ORDER", "HAVING", "INSERT", "UPDATE", "DELETE", "CREATE",
    "JOIN", "VALUES",
];

/// Characters that code uses far more than prose does.
fn is_code_symbol(c: char) -> bool {
    matches!(
        c,
        '(' | ')'
            | '{'
            | '}'
            | '['
            | ']'
            | '<'
            | '>'
            | '='
            | '_'
            | '*'
            | '&'
            | '|'
            | '!'
            | '#'
            | '/'
            | '\\'
            | '+'
            | '%'
            | '^'
            | '~'
            | '@'
            | ';'
    )
}

fn is_math_symbol(c: char) -> bool {
    matches!(
        c,
        '∑' | '∏'
            | '√'
            | '∫'
            | '∂'
            | '∇'
            | '≤'
            | '≥'
            | '≠'
            | '≈'
            | '≡'
            | '±'
            | '×'
            | '÷'
            | '·'
            | 'π'
            | '∞'
            | '∈'
            | '∉'
            | '⊂'
            | '⊆'
            | '∪'
            | '∩'
            | '∀'
            | '∃'
            | '⇒'
            | '⇔'
            | '→'
            | '²'
            | '³'
            | 'ⁿ'
            | '½'
            | 'θ'
            | 'λ'
            | 'Σ'
            | 'Δ'
    )
}

/// Whether a (trimmed, non-empty) line looks like source code.
pub fn is_code_line(t: &str) -> bool {
    let last = t.chars().next_back().unwrap_or(' ');
    if matches!(last, ';' | '{' | '}') {
        return true;
    }
    if t.starts_with(">>> ") || t.starts_with("$ ") && !t[2..].contains('$') {
        return true;
    }
    let sentence_end = matches!(last, '.' | '?' | '!' | '"' | '\'');
    let first = t
        .split(|c: char| c.is_whitespace() || c == '(' || c == ':')
        .next()
        .unwrap_or("");
    if KEYWORDS.contains(&first) && !sentence_end {
        return true;
    }
    let chars = t.chars().filter(|c| !c.is_whitespace()).count();
    let symbols = t.chars().filter(|&c| is_code_symbol(c)).count();
    !sentence_end && chars >= 4 && symbols * 7 >= chars
}

/// Whether a line holds a formula (checked before code: TeX's braces and backslashes would
/// read as code).
pub fn is_math_line(t: &str) -> bool {
    // `$...$` around something formula-like (not prices: "$5 and $10").
    let tex_span = t.split('$').skip(1).step_by(2).any(|inner| {
        !inner.is_empty()
            && !inner.starts_with(' ')
            && inner
                .chars()
                .any(|c| matches!(c, '\\' | '^' | '_' | '=' | '+' | '{' | '<' | '>'))
    });
    if tex_span || t.contains("$$") {
        return true;
    }
    let bytes = t.as_bytes();
    let tex_command = bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\\' && TEX_MATH.iter().any(|c| t[i + 1..].starts_with(c)));
    // Superscripts and subscripts: `x^2`, `b^{n}`, `a_{ij}`.
    let script = bytes.windows(3).any(|w| {
        (w[0].is_ascii_alphanumeric() || w[0] == b')' || w[0] == b'}')
            && (w[1] == b'^' || w[1] == b'_' && w[2] == b'{')
            && (w[2].is_ascii_alphanumeric() || w[2] == b'{')
    });
    tex_command || script || t.chars().filter(|&c| is_math_symbol(c)).count() >= 2
}

/// TeX commands that only formulas use (after the backslash).
const TEX_MATH: &[&str] = &[
    "frac",
    "sqrt",
    "sum",
    "int",
    "prod",
    "lim",
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "theta",
    "lambda",
    "sigma",
    "omega",
    "phi",
    "pi",
    "leq",
    "geq",
    "neq",
    "le ",
    "ge ",
    "cdot",
    "times",
    "infty",
    "partial",
    "mathbb",
    "mathrm",
    "mathcal",
    "left",
    "right",
    "binom",
    "begin{equation",
    "begin{align",
    "pm",
    "in ",
    "forall",
    "exists",
];

/// The shares of formula lines and of code lines among the non-empty lines of `text`.
pub fn scores(text: &str) -> (f64, f64) {
    let (mut lines, mut math, mut code) = (0u32, 0u32, 0u32);
    for l in text.lines() {
        let t = l.trim();
        if t.is_empty() {
            continue;
        }
        lines += 1;
        if is_math_line(t) {
            math += 1;
        } else if is_code_line(t) {
            code += 1;
        }
    }
    if lines == 0 {
        return (0.0, 0.0);
    }
    (math as f64 / lines as f64, code as f64 / lines as f64)
}

impl Stage for TopicRules {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let (math, code) = scores(doc.text());
        self.sig_math.set(&mut doc.signals, math);
        self.sig_code.set(&mut doc.signals, code);
        Outcome::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Purpose;

    fn stage(toml: &str) -> Result<Built, ConfigError> {
        let t: toml::Table = toml.parse().unwrap();
        build(&StageArgs {
            name: "topic",
            table: &t,
            base_dir: std::path::Path::new("."),
            purpose: Purpose::Run,
            seed: 0,
        })
    }

    #[test]
    fn topic_rules_score_lines() {
        let Ok(Built::Map(s)) = stage(DEF.example) else {
            panic!("build failed")
        };
        let text = "Completing the square gives the roots.\n\n$x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}$\nThe sum ∑ k² ≤ n³ holds.\nfn main() {\n    println!(\"hi\");\n}\nIt costs $5 and $10 a month.";
        let mut d = Document::new("a", text);
        assert_eq!(s.process(&mut d), Outcome::Keep);
        assert_eq!(d.signals.f64("topic.math"), Some(2.0 / 7.0));
        assert_eq!(d.signals.f64("topic.code"), Some(3.0 / 7.0));
        // Prose with prices, parentheses and a sentence that opens with "For" is neither.
        let prose =
            "For each river (there are three), the survey costs $5 or $10.\nImport duties rose.";
        assert_eq!(scores(prose), (0.0, 0.0));
        assert_eq!(scores(""), (0.0, 0.0));
        // Unknown keys are configuration errors naming the key.
        assert_eq!(stage("threshold = 1").err().unwrap().key, "threshold");
    }

    /// On real labelled text (the shared topic train files; the rules are not trained, so no
    /// split is used for fitting): code files score far above English prose on code lines, and
    /// math documentation above prose on formula lines.
    #[test]
    fn topic_rules_separate_real_code_math_and_prose() {
        use crate::tokenize::testdata::{jsonl_gz_records, shared};
        let Some(dir) = shared().map(|s| s.join("data/classifiers")) else {
            return;
        };
        let mut texts = std::collections::BTreeMap::new();
        for label in ["code", "general", "math"] {
            let path = dir.join(format!("topic-{label}-train.jsonl.gz"));
            let Some(docs) = jsonl_gz_records(&path) else {
                return;
            };
            let t: Vec<String> = docs
                .iter()
                .take(300)
                .map(|d| d["text"].as_str().unwrap().to_string())
                .collect();
            texts.insert(label, t);
        }
        let mean = |label: &str, pick: fn((f64, f64)) -> f64| {
            let v: Vec<f64> = texts[label].iter().map(|t| pick(scores(t))).collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let code = |s: (f64, f64)| s.1;
        let math = |s: (f64, f64)| s.0;
        let (c_code, c_gen) = (mean("code", code), mean("general", code));
        let (m_math, m_gen) = (mean("math", math), mean("general", math));
        eprintln!("code lines: code {c_code:.3} general {c_gen:.3}; formula lines: math {m_math:.3} general {m_gen:.3}");
        assert!(c_code > 0.4 && c_code > 4.0 * c_gen, "{c_code} vs {c_gen}");
        assert!(m_math > 10.0 * m_gen, "{m_math} vs {m_gen}");
    }
}
