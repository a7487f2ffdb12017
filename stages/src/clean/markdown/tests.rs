use super::*;

fn strip(s: &str) -> String {
    strip_markdown(s, 0).0
}

#[test]
fn each_marker_kind() {
    let (out, r) = strip_markdown(
        "# Title #\n\nSome **bold**, *em*, __strong__, _under_ and ~~gone~~ words.\n\
         See [the docs](https://example.com/a_(b) \"Docs\") and ![a lighthouse](img/l.png).\n\
         Ref [link][1] and <https://example.org/x>.\n\n[1]: https://example.com\n\n\
         - first\n* second\n+ [x] done\n1. ordered\n\n---\n\
         | a | b |\n|---|:-:|\n| `x|y` | 2 |\n\nSetext\n======\n",
        0,
    );
    assert_eq!(
        out,
        "Title\n\nSome bold, em, strong, under and gone words.\n\
         See the docs and a lighthouse.\nRef link and https://example.org/x.\n\n\n\
         first\nsecond\ndone\nordered\n\n\
         a\tb\nx|y\t2\n\nSetext\n"
    );
    assert_eq!(
        r,
        Removed {
            headings: 2,
            emphasis: 5,
            links: 4,
            images: 1,
            lists: 4,
            tables: 2,
            code: 1,
            rules: 1,
            evidence: 9,
        }
    );
}

#[test]
fn text_without_enough_evidence_is_left_alone() {
    // Extractor output and plain text: a dash list and a shell comment are not markdown.
    let plain = "# apt install curl\n- first point\n- second point\nIt is *really* fine.";
    assert_eq!(
        strip_markdown(plain, 2),
        (plain.to_string(), Removed::default())
    );
    let md = "## Install\n\nRun `apt install curl`, see [the guide](https://x.org/g).";
    let (out, r) = strip_markdown(md, 2);
    assert_eq!(out, "Install\n\nRun apt install curl, see the guide.");
    assert_eq!(r.evidence, 2);
}

#[test]
fn code_and_math_are_kept_byte_for_byte() {
    let code =
        "```python\ndef f(**kwargs):\n    # not a heading\n    return a[i](x) * b * c\n```\n";
    assert_eq!(
        strip(code),
        "def f(**kwargs):\n    # not a heading\n    return a[i](x) * b * c\n"
    );
    // An indented block after a blank line is code too.
    let indented = "Run:\n\n    - not a list\n    **kw**\n";
    assert_eq!(strip(indented), indented);
    let math = "Let $a_1 * b_2 * c$ and $$\\sum_{i=1}^n x_i^*$$ hold, **really**.\n\
                $$\n[x](y) * _z_ *\n$$\n\\begin{align}\n| a | b |\n\\end{align}\n\
                Also \\(x_1 * y_1\\) and \\[ [a](b) \\].";
    assert_eq!(
        strip(math),
        "Let $a_1 * b_2 * c$ and $$\\sum_{i=1}^n x_i^*$$ hold, really.\n\
         $$\n[x](y) * _z_ *\n$$\n\\begin{align}\n| a | b |\n\\end{align}\n\
         Also \\(x_1 * y_1\\) and \\[ [a](b) \\]."
    );
    // Inline code loses its ticks, never its contents.
    assert_eq!(strip("Call `a **b** c` now."), "Call a **b** c now.");
    assert_eq!(
        strip("Fortran: yyy**4+4*xxx*yyy**3."),
        "Fortran: yyy**4+4*xxx*yyy**3."
    );
}

#[test]
fn plain_text_lookalikes_stay() {
    for s in [
        "It costs $5 and $10, or 2*3*4 in snake_case_name form.",
        "Sch**ße, use **kwargs with care, *** the best *** spot.",
        "array[i](x) and f(a)[b](c) index, not link.",
        "~5 km away, a ~ b, 3 - 2 = 1.",
        "A | B is a shell pipe; so is x || y.",
        "Email <not an autolink> or a <div> tag.",
        "Footnote [^1]: stays.",
        "Plain text with no markers at all.",
    ] {
        assert_eq!(strip(s), s, "{s}");
    }
}

#[test]
fn stage_writes_counts_and_edits_text() {
    let s = crate::kit::stage(&DEF, "md", DEF.example).unwrap();
    let mut d = Document::new("a", "## Intro\n\nA **b** [c](d).\n");
    assert_eq!(s.process(&mut d), Outcome::Keep);
    assert_eq!(d.text(), "Intro\n\nA b c.\n");
    assert_eq!(d.signals.i64("md.headings"), Some(1));
    assert_eq!(d.signals.i64("md.emphasis"), Some(1));
    assert_eq!(d.signals.i64("md.links"), Some(1));
    assert_eq!(d.signals.i64("md.removed_chars"), Some(12));
    let mut d = Document::new("b", "Nothing here.");
    s.process(&mut d);
    assert_eq!(d.text(), "Nothing here.");
    assert_eq!(d.signals.i64("md.removed_chars"), Some(0));
    assert!(crate::kit::stage(&DEF, "md", "strip = true").is_err());
}

/// Alphanumeric words of a text, in order.
fn words(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

fn jsonl_texts(path: &std::path::Path) -> Option<Vec<(String, String)>> {
    Some(
        crate::tokenize::testdata::jsonl_gz_records(path)?
            .iter()
            .filter_map(|v| {
                Some((
                    v["id"].as_str().unwrap_or("").to_string(),
                    v["text"].as_str()?.to_string(),
                ))
            })
            .collect(),
    )
}

/// On real text (extracted web pages, dolma's CC documents, Debian code and math docs):
/// markers only go (the words that remain are the input's words in order), text without
/// markers is untouched, and every `$$..$$` display and fenced code line survives.
#[test]
fn real_corpora_lose_markers_only() {
    let Some(shared) = crate::tokenize::testdata::shared() else {
        return;
    };
    let files = [
        "data/corpora/warc-extracted-texts.jsonl.gz",
        "data/corpora/dolma-tests/multiple_files_cc_en_head-0091.jsonl.gz",
        "data/corpora/dolma-tests/multiple_files_cc_en_head-0174.jsonl.gz",
        "data/corpora/dolma-tests/provided_documents_000.json.gz",
        "data/classifiers/topic-math-train.jsonl.gz",
        "data/classifiers/topic-code-train.jsonl.gz",
    ];
    let (mut docs, mut changed, mut total) = (0, 0, Removed::default());
    for f in files {
        let Some(texts) = jsonl_texts(&shared.join(f)) else {
            continue;
        };
        let (mut n, mut gated) = (0, 0);
        for (id, text) in texts.iter().take(1500) {
            // Binary files stored as text (PNG bytes read as Latin-1 sit in the topic corpora)
            // are not markdown; the readers drop them as binary before any stage sees them.
            let control = text
                .chars()
                .filter(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
                .count();
            if control * 100 > text.chars().count() {
                continue;
            }
            let (out, r) = strip_markdown(text, 0);
            docs += 1;
            n += 1;
            gated += (r.evidence >= 2) as usize;
            if r.total() == 0 {
                assert_eq!(&out, text, "{id}: changed without a marker");
                continue;
            }
            changed += 1;
            let (wi, wo) = (words(text), words(&out));
            // Links lose their URL words and numbered items their numbers; everything else
            // keeps every word.
            if r.links + r.images + r.lists == 0 {
                let at = wi.iter().zip(&wo).take_while(|(a, b)| a == b).count();
                assert!(
                    wi == wo,
                    "{id}: words changed at {at}: {:?} -> {:?}",
                    &wi[at..(at + 6).min(wi.len())],
                    &wo[at..(at + 6).min(wo.len())]
                );
            } else {
                let mut it = wi.iter();
                let bad = wo.iter().position(|w| !it.any(|x| x == w));
                assert!(
                    bad.is_none(),
                    "{id}: words added or reordered at {bad:?}: {:?}",
                    &wo[bad.unwrap_or(0).saturating_sub(5)..(bad.unwrap_or(0) + 3).min(wo.len())]
                );
            }
            for m in text
                .match_indices("$$")
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
                .chunks(2)
            {
                if let [a, b] = m {
                    let span = &text[*a..*b + 2];
                    if !span.contains('\n') {
                        assert!(out.contains(span), "{id}: math {span} lost");
                    }
                }
            }
            for (k, v) in [
                (&mut total.headings, r.headings),
                (&mut total.emphasis, r.emphasis),
                (&mut total.links, r.links),
                (&mut total.images, r.images),
                (&mut total.lists, r.lists),
                (&mut total.tables, r.tables),
                (&mut total.code, r.code),
                (&mut total.rules, r.rules),
            ] {
                *k += v;
            }
        }
        eprintln!("{f}: {n} docs, {gated} with 2+ unmistakable markers (rewritten by default)");
    }
    eprintln!("{docs} docs, {changed} changed: {total:?}");
    if docs > 1000 {
        // The extractor's list dashes and table pipes, the Debian docs' headings and links.
        assert!(total.lists > 100 && total.headings > 10 && total.links > 10);
    }
}

/// The Markdown of this repository's own docs and README: a rendered reading
/// (markdown-it-py, a CommonMark implementation, to HTML, tags removed) has the same words as
/// the stripped text, for most documents.
#[test]
fn repo_markdown_matches_commonmark_rendering() {
    let Some(py) = crate::tokenize::testdata::python_with(&["markdown_it"]) else {
        testkit::skip("no Python with markdown_it (markdown-it-py)");
        return;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.push(root.join("README.md"));
    files.sort();
    let script = r#"
import sys, json, html, re
from markdown_it import MarkdownIt
md = MarkdownIt("commonmark").enable("table").enable("strikethrough")
for p in sys.argv[1:]:
    h = md.render(open(p, encoding="utf-8").read())
    h = re.sub(r"<img[^>]*alt=\"([^\"]*)\"[^>]*>", r" \1 ", h)
    # Inline elements join their text to the words around them; block elements separate.
    h = re.sub(r"</?(code|em|strong|a|s|del)\b[^>]*>", "", h)
    t = html.unescape(re.sub(r"<[^>]+>", " ", h))
    print(json.dumps(t))
"#;
    let out = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rendered.len(), files.len());
    let mut same = 0;
    for (p, want) in files.iter().zip(&rendered) {
        let (got, _) = strip_markdown(&std::fs::read_to_string(p).unwrap(), 0);
        let (g, w) = (words(&got), words(want));
        if g == w {
            same += 1;
        } else {
            let at = g.iter().zip(&w).take_while(|(a, b)| a == b).count();
            eprintln!(
                "{}: differs at word {at}: ours {:?} / markdown-it {:?}",
                p.display(),
                &g[at..(at + 8).min(g.len())],
                &w[at..(at + 8).min(w.len())]
            );
        }
    }
    eprintln!(
        "{same} of {} files read the same as markdown-it",
        files.len()
    );
    assert!(same * 10 >= files.len() * 8, "{same} of {}", files.len());
}

#[test]
fn math_markers_inside_inline_code_open_no_math_block() {
    // A doc that names TeX's `$$` in inline code: the fence below it is still a fence and the
    // heading still a heading.
    let out = strip("# Math\n\nTeX as `$$` and `\\[`.\n\n```toml\nkey = 1\n```\n\n## After\n");
    assert_eq!(out, "Math\n\nTeX as $$ and \\[.\n\nkey = 1\n\nAfter\n");
}
