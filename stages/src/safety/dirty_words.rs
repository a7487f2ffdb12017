//! `safety.dirty_words`: the fraction of a document's words that are on its language's
//! bad-word list (LDNOOBW, the list C4 uses).
//!
//! Lists come from a folder with one file per language code (`en`, `de`, `ja`, ...; one word
//! or phrase per line). The document's language is the `lang` signal, else `default_lang`.
//! For languages written with spaces, an entry matches whole words of the shared word view,
//! case-insensitively (a phrase matches consecutive words). For Chinese, Japanese and Thai,
//! where words are not delimited, an entry matches anywhere in the lower-cased text (as C4
//! does), except the few entries that are common parts of ordinary words (C4's allow-list:
//! `性` in Chinese; `sm`, `グロ`, `女の子` in Japanese).
//!
//! Detector codes find their list through [`list_code`]: `nb`/`nn` use the Norwegian list
//! `no`, `tl` the Filipino list `fil`, `zh-Hant` the `zh` list, ISO 639-3 codes their list.
//!
//! Signals: `count` (matches), `ratio` (matches per word, words being the alphanumeric
//! tokens), `listed` (whether the language has a list). Fails when `ratio > max_ratio`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Deserialize;

use crate::config::{check_fraction, ConfigError, Purpose, StageArgs};
use crate::declare::{Bool, Declare, Declared, Sig, F64, I64};
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::text::{push_lower, segment_words};
use crate::Document;

/// Languages whose lists match inside words.
const SUBSTRING_LANGS: &[&str] = &["ja", "zh", "th"];

/// Entries that are ordinary word parts in languages without spaces (C4's allow-list).
const ALLOW: &[(&str, &str)] = &[("ja", "sm"), ("ja", "グロ"), ("ja", "女の子"), ("zh", "性")];

/// One language's list, compiled.
pub enum WordList {
    /// Hashes of the lower-cased word sequences of each entry, by entry length in words.
    Words {
        by_len: Vec<FxHashSet<u64>>,
        /// Hashes of the first word of every entry: most words are not one, so most
        /// positions cost one lookup...
        first: FxHashSet<u64>,
        /// ...or less: a 65,536-bit filter on the low bits of those hashes.
        bloom: Box<[u64; 1024]>,
        /// ...or none: a 65,536-bit filter on the shape (first and last byte, length) of the
        /// ASCII first words, which an ASCII word of the text is checked against before it is
        /// hashed (most are not on a list, and most words are ASCII).
        shapes: Box<[u64; 1024]>,
        /// The first and last characters of the first words: a non-ASCII word of the text
        /// is checked against these (after lower-casing its two ends only) before it is hashed.
        edges: FxHashSet<(char, char)>,
    },
    /// Substring matcher over the lower-cased text.
    Substrings(aho_corasick::AhoCorasick),
}

fn hash_seq(hashes: &[u64]) -> u64 {
    hashes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ x).wrapping_mul(0x100_0000_01b3).rotate_left(17)
    })
}

/// Bit index of a lower-case ASCII word's shape in [`WordList::Words`]'s `shapes` filter.
#[inline]
fn shape_bit(first: u8, last: u8, len: usize) -> usize {
    let k = ((first as u32) << 14) | ((last as u32) << 6) | len.min(63) as u32;
    (k.wrapping_mul(0x9E37_79B1) >> 16) as usize
}

#[inline]
fn ascii_shape_bit(s: &[u8]) -> usize {
    shape_bit(
        s[0].to_ascii_lowercase(),
        s[s.len() - 1].to_ascii_lowercase(),
        s.len(),
    )
}

fn lower_hash(s: &str, buf: &mut String) -> u64 {
    if s.len() <= 64 && s.is_ascii() {
        let mut tmp = [0u8; 64];
        for (t, c) in tmp.iter_mut().zip(s.bytes()) {
            *t = c.to_ascii_lowercase();
        }
        return xxhash_rust::xxh3::xxh3_64(&tmp[..s.len()]);
    }
    buf.clear();
    push_lower(buf, s);
    xxhash_rust::xxh3::xxh3_64(buf.as_bytes())
}

impl WordList {
    /// Compiles the entries of a language's list.
    pub fn new(lang: &str, entries: &[String]) -> Self {
        let allowed: FxHashSet<&str> = ALLOW
            .iter()
            .filter(|(l, _)| *l == lang)
            .map(|(_, w)| *w)
            .collect();
        let entries: Vec<String> = entries
            .iter()
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty() && !allowed.contains(e.as_str()))
            .collect();
        if SUBSTRING_LANGS.contains(&lang) {
            let ac = aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::LeftmostLongest)
                .build(&entries)
                .expect("word lists are small");
            return WordList::Substrings(ac);
        }
        let mut by_len: Vec<FxHashSet<u64>> = Vec::new();
        let mut first = FxHashSet::default();
        let mut shapes = Box::new([0u64; 1024]);
        let mut edges = FxHashSet::default();
        let mut buf = String::new();
        for e in &entries {
            let ws = segment_words(e);
            let hs: Vec<u64> = ws
                .iter()
                .map(|w| lower_hash(w.as_str(e), &mut buf))
                .collect();
            if hs.is_empty() {
                continue;
            }
            // The form the first word is hashed in: an ASCII word of a text can only match it
            // when that form is ASCII (and then of the same shape).
            buf.clear();
            push_lower(&mut buf, ws[0].as_str(e));
            if buf.is_ascii() {
                let k = ascii_shape_bit(buf.as_bytes());
                shapes[k / 64] |= 1 << (k % 64);
            }
            if let (Some(a), Some(z)) = (buf.chars().next(), buf.chars().next_back()) {
                edges.insert((a, z));
            }
            if by_len.len() < hs.len() {
                by_len.resize_with(hs.len(), FxHashSet::default);
            }
            by_len[hs.len() - 1].insert(hash_seq(&hs));
            first.insert(hs[0]);
        }
        let mut bloom = Box::new([0u64; 1024]);
        for h in &first {
            bloom[(h & 0xffff) as usize / 64] |= 1 << (h % 64);
        }
        // Phrases longer than the matching window cannot match; lists hold none.
        by_len.truncate(8);
        WordList::Words {
            by_len,
            first,
            bloom,
            shapes,
            edges,
        }
    }

    /// Matches in a document (non-overlapping, longest phrase first at each word).
    pub fn count(&self, doc: &Document) -> usize {
        match self {
            WordList::Substrings(ac) => {
                let mut lower = String::with_capacity(doc.text().len());
                push_lower(&mut lower, doc.text());
                ac.find_iter(&lower).count()
            }
            WordList::Words {
                by_len,
                first,
                bloom,
                shapes,
                edges,
            } => {
                let text = doc.text();
                let words = doc.words();
                let shared = doc.word_hashes();
                // A word without upper case is its own lower-case form: reuse the shared hash.
                let lower = |i: usize| -> u64 {
                    let s = words[i].as_str(text);
                    if s.bytes().all(|c| c.is_ascii() && !c.is_ascii_uppercase()) {
                        shared[i]
                    } else {
                        lower_hash(s, &mut String::new())
                    }
                };
                let max_len = by_len.len();
                let mut window = [0u64; 8];
                let mut n = 0;
                let mut i = 0;
                while i < words.len() {
                    let w = &words[i];
                    if w.chars == w.end - w.start {
                        // ASCII (as many bytes as characters): its shape says whether it can be
                        // a first word, before any hashing.
                        let k = ascii_shape_bit(&text.as_bytes()[w.range()]);
                        if shapes[k / 64] & (1 << (k % 64)) == 0 {
                            i += 1;
                            continue;
                        }
                    } else {
                        // The ends of its lower-case form (lower-casing is per character).
                        let s = w.as_str(text);
                        let a = s.chars().next().and_then(|c| c.to_lowercase().next());
                        let z = s.chars().next_back().and_then(|c| c.to_lowercase().last());
                        if !a.zip(z).is_some_and(|e| edges.contains(&e)) {
                            i += 1;
                            continue;
                        }
                    }
                    let h = lower(i);
                    if bloom[(h & 0xffff) as usize / 64] & (1 << (h % 64)) == 0
                        || !first.contains(&h)
                    {
                        i += 1;
                        continue;
                    }
                    let avail = max_len.min(words.len() - i).min(window.len());
                    window[0] = h;
                    for (k, slot) in window.iter_mut().enumerate().take(avail).skip(1) {
                        *slot = lower(i + k);
                    }
                    let mut matched = 0;
                    for len in (1..=avail).rev() {
                        if !by_len[len - 1].is_empty()
                            && by_len[len - 1].contains(&hash_seq(&window[..len]))
                        {
                            matched = len;
                            break;
                        }
                    }
                    if matched > 0 {
                        n += 1;
                        i += matched;
                    } else {
                        i += 1;
                    }
                }
                n
            }
        }
    }
}

/// Other spellings of the list codes that language detectors report: ISO 639-2/3 codes, the
/// Norwegian written standards (lid.176's `no` is reported as `nb`; lingua has `nb` and `nn`;
/// LDNOOBW's file is `no`), Tagalog for Filipino, and macro-language members written like
/// the list's language (Egyptian Arabic, Iranian Persian, Mandarin, Cantonese and Wu in
/// Chinese characters).
const ALIASES: &[(&str, &str)] = &[
    ("ara", "ar"),
    ("arb", "ar"),
    ("arz", "ar"),
    ("ces", "cs"),
    ("cze", "cs"),
    ("dan", "da"),
    ("deu", "de"),
    ("ger", "de"),
    ("eng", "en"),
    ("epo", "eo"),
    ("spa", "es"),
    ("fas", "fa"),
    ("per", "fa"),
    ("pes", "fa"),
    ("fin", "fi"),
    ("tl", "fil"),
    ("tgl", "fil"),
    ("fra", "fr"),
    ("fre", "fr"),
    ("hin", "hi"),
    ("hun", "hu"),
    ("ita", "it"),
    ("jpn", "ja"),
    ("kor", "ko"),
    ("nld", "nl"),
    ("dut", "nl"),
    ("nb", "no"),
    ("nn", "no"),
    ("nob", "no"),
    ("nno", "no"),
    ("nor", "no"),
    ("pol", "pl"),
    ("por", "pt"),
    ("rus", "ru"),
    ("swe", "sv"),
    ("tha", "th"),
    ("tur", "tr"),
    ("zho", "zh"),
    ("chi", "zh"),
    ("cmn", "zh"),
    ("yue", "zh"),
    ("wuu", "zh"),
];

/// The list code that serves a detector's language code: the code itself when a list has
/// it, else its alias, else its base language (`zh-Hant`, `sr_Latn`, `fr-CA` -> `zh`, `sr`,
/// `fr`) or the base's alias. Case and `_`/`-` do not matter.
pub fn list_code(lang: &str, has: impl Fn(&str) -> bool) -> Option<String> {
    let code = lang.trim().to_ascii_lowercase().replace('_', "-");
    let alias = |c: &str| ALIASES.iter().find(|(a, _)| *a == c).map(|(_, l)| *l);
    let base = code.split('-').next().unwrap_or("");
    let found = [
        Some(lang.trim()),
        Some(code.as_str()),
        alias(&code),
        Some(base),
        alias(base),
    ]
    .into_iter()
    .flatten()
    .find(|c| has(c))
    .map(str::to_string);
    found
}

/// Every list of a folder, by language code (the file name). A regional variant's list
/// (`fr-CA-u-sd-caqc`) also joins its base language's list (`fr`): detectors do not tell
/// regional variants apart, and a Québec swear word on a French page is still one.
pub fn load_folder(dir: &Path) -> std::io::Result<FxHashMap<String, WordList>> {
    Ok(read_folder(dir)?
        .into_iter()
        .map(|(lang, entries)| {
            let list = WordList::new(&lang, &entries);
            (lang, list)
        })
        .collect())
}

/// The entries of every list of a folder, regional variants merged into their base language.
pub fn read_folder(dir: &Path) -> std::io::Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for p in files {
        let Some(lang) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        // Language files have no extension (`en`, `fr-CA-u-sd-caqc`); skip LICENSE, README.md.
        if lang.contains('.') || lang.chars().any(|c| c.is_ascii_uppercase()) && !lang.contains('-')
        {
            continue;
        }
        let text = std::fs::read_to_string(&p)?;
        let entries: Vec<String> = text.lines().map(str::to_string).collect();
        if let Some((base, _)) = lang.split_once('-') {
            out.entry(base.to_string())
                .or_default()
                .extend(entries.iter().cloned());
        }
        out.entry(lang.to_string()).or_default().extend(entries);
    }
    Ok(out)
}

/// `[stages.dirty_words]`: bad-word lists and the threshold.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirtyWordsConfig {
    /// Folder of lists, one file per language code (LDNOOBW layout).
    pub lists_dir: String,
    /// Language for documents without a `lang` signal.
    #[serde(default = "default_lang")]
    pub default_lang: String,
    /// Maximum fraction of words that are bad words (0: any bad word fails, as in C4).
    #[serde(default)]
    pub max_ratio: f64,
    /// Extra entries per language, e.g. `en = ["badword"]`.
    #[serde(default)]
    pub extra: BTreeMap<String, Vec<String>>,
}

fn default_lang() -> String {
    "en".into()
}

pub static DEF: StageDef = StageDef {
    kind: "safety.dirty_words",
    about:
        "Per-language ratio of words on a bad-word list (LDNOOBW), language from the lang signal",
    example: "lists_dir = \"ldnoobw\"\ndefault_lang = \"en\"\nmax_ratio = 0.01",
    build,
};

pub struct DirtyWords {
    name: String,
    cfg: DirtyWordsConfig,
    lists: Option<Arc<FxHashMap<String, WordList>>>,
    sig_count: Sig<I64>,
    sig_ratio: Sig<F64>,
    sig_listed: Sig<Bool>,
    declared: Declared,
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: DirtyWordsConfig = args.parse()?;
    check_fraction("max_ratio", cfg.max_ratio)?;
    let dir = args.resolve_path("lists_dir", &cfg.lists_dir)?;
    if !dir.is_dir() {
        return Err(ConfigError::new(
            "lists_dir",
            format!("{} is not a folder", dir.display()),
        ));
    }
    let lists = if args.purpose == Purpose::Run {
        let mut m = read_folder(&dir)
            .map_err(|e| ConfigError::new("lists_dir", format!("{}: {e}", dir.display())))?;
        for (lang, extra) in &cfg.extra {
            // Extra entries join the language's own list (`nb` extras join `no`).
            let key = list_code(lang, |c| m.contains_key(c)).unwrap_or_else(|| lang.clone());
            m.entry(key).or_default().extend(extra.iter().cloned());
        }
        let m: FxHashMap<String, WordList> = m
            .into_iter()
            .map(|(lang, entries)| {
                let list = WordList::new(&lang, &entries);
                (lang, list)
            })
            .collect();
        Some(Arc::new(m))
    } else {
        None
    };
    let mut d = Declare::new(args.name);
    let count = d.signal::<I64>("count", "bad-word matches");
    let ratio = d.signal::<F64>("ratio", "bad-word matches per word");
    let listed = d.signal::<Bool>("listed", "the document's language has a list");
    // A page without a single match keeps, whatever its ratio.
    d.max(ratio, Some(cfg.max_ratio), "max_ratio", "dirty_words")
        .only_if(count, 1.0);
    Ok(Built::Map(Box::new(DirtyWords {
        name: args.name.to_string(),
        cfg,
        lists,
        sig_count: count,
        sig_ratio: ratio,
        sig_listed: listed,
        declared: d.finish(),
    })))
}

impl Stage for DirtyWords {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let Some(lists) = &self.lists else {
            return Outcome::Keep;
        };
        let lang = doc.lang().unwrap_or(&self.cfg.default_lang);
        let list = lists
            .get(lang)
            .or_else(|| lists.get(&list_code(lang, |c| lists.contains_key(c))?));
        let (count, listed) = match list {
            Some(l) => (l.count(doc), true),
            None => (0, false),
        };
        let words = doc.words().iter().filter(|w| w.is_alnum()).count();
        self.sig_count.set(&mut doc.signals, count as i64);
        self.sig_ratio.set(
            &mut doc.signals,
            if words > 0 {
                count as f64 / words as f64
            } else {
                0.0
            },
        );
        self.sig_listed.set(&mut doc.signals, listed);
        Outcome::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(dir: &Path, body: &str) -> Box<dyn Stage> {
        match crate::kit::build_in(&DEF, "dw", body, Purpose::Run, dir) {
            Ok(Built::Map(s)) => s,
            Err(e) => panic!("{e}"),
            _ => unreachable!(),
        }
    }

    #[test]
    fn words_and_phrases_per_language() {
        let dir = tempfile::tempdir().unwrap();
        let lists = dir.path().join("ldnoobw");
        std::fs::create_dir(&lists).unwrap();
        std::fs::write(lists.join("en"), "darn\nblue waffle\nheck\n").unwrap();
        std::fs::write(lists.join("de"), "mist\n").unwrap();
        std::fs::write(lists.join("zh"), "坏\n性\n").unwrap();
        std::fs::write(lists.join("LICENSE"), "not a list\n").unwrap();
        let s = stage(dir.path(), DEF.example);
        let run = |text: &str, lang: Option<&str>| {
            let mut d = Document::new("x", text);
            if let Some(l) = lang {
                d.signals.set_str(crate::LANG_SIGNAL, l);
            }
            s.process(&mut d);
            (
                d.signals.i64("dw.count").unwrap(),
                s.judge(&d.signals),
                d.signals.bool("dw.listed").unwrap(),
            )
        };
        // Whole words, case-insensitive; a phrase counts once; "darned" is not "darn".
        let (n, v, _) = run("Darn it, the Blue Waffle and darned heck.", None);
        assert_eq!(n, 3);
        assert_eq!(v, Outcome::Drop("dirty_words"));
        assert_eq!(run("So much mist in the valley.", None).0, 0);
        assert_eq!(run("So viel Mist im Tal.", Some("de")).0, 1);
        // No list for the language: nothing counts.
        let (n, v, listed) = run("darn", Some("xx"));
        assert_eq!((n, v, listed), (0, Outcome::Keep, false));
        // Chinese matches inside words; the allow-listed 性 does not count.
        assert_eq!(run("这是坏人，性格很好。", Some("zh")).0, 1);
        // One bad word in a long text stays under max_ratio = 0.01.
        let long = format!("{} darn.", "word ".repeat(200));
        assert_eq!(run(&long, None).1, Outcome::Keep);
    }

    #[test]
    fn shared_ldnoobw_lists_load() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/nsfw/ldnoobw");
        if !dir.is_dir() {
            testkit::skip!("{} not found", dir.display())
        }
        let m = load_folder(&dir).unwrap();
        assert!(m.len() >= 27, "{}", m.len());
        assert!(m.contains_key("en") && m.contains_key("ja") && !m.contains_key("LICENSE"));
        let d = Document::new(
            "x",
            "A perfectly clean sentence about lighthouses and the sea.",
        );
        assert_eq!(m["en"].count(&d), 0);
    }

    #[test]
    fn detector_codes_find_their_list() {
        let lists = ["no", "fil", "zh", "fr", "fr-CA-u-sd-caqc", "en", "fa"];
        let has = |c: &str| lists.contains(&c);
        for (code, list) in [
            ("no", Some("no")),
            ("nb", Some("no")),
            ("nn", Some("no")),
            ("NOB", Some("no")),
            ("tl", Some("fil")),
            ("zh-Hant", Some("zh")),
            ("zh_Hans", Some("zh")),
            ("yue", Some("zh")),
            ("fr-CA", Some("fr")),
            ("fr-CA-u-sd-caqc", Some("fr-CA-u-sd-caqc")),
            ("eng", Some("en")),
            ("pes", Some("fa")),
            ("sv", None),
            ("und", None),
            ("", None),
        ] {
            assert_eq!(list_code(code, has).as_deref(), list, "{code}");
        }
    }

    /// Norwegian pages (`nb` from lid.176 and lingua, `nn` from lingua) are judged by the
    /// Norwegian list, whose file is `no`; Québec French entries count on French pages.
    #[test]
    fn norwegian_and_regional_lists_apply_on_shared_ldnoobw() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/nsfw/ldnoobw");
        if !dir.is_dir() {
            testkit::skip(format!("{} not found", dir.display()));
            return;
        }
        let body = format!("lists_dir = {:?}", dir.display().to_string());
        let s = stage(dir.parent().unwrap(), &body);
        let run = |text: &str, lang: &str| {
            let mut d = Document::new("x", text);
            d.signals.set_str(crate::LANG_SIGNAL, lang);
            s.process(&mut d);
            (
                d.signals.i64("dw.count").unwrap(),
                d.signals.bool("dw.listed").unwrap(),
            )
        };
        let no = "Det var en lang dag, og faen ta den bussen som aldri kom.";
        for lang in ["nb", "nn", "no"] {
            assert_eq!(run(no, lang), (1, true), "{lang}");
        }
        // A word only on the Québec list counts on a page detected as plain French.
        let qc = std::fs::read_to_string(dir.join("fr-CA-u-sd-caqc")).unwrap();
        let fr = std::fs::read_to_string(dir.join("fr")).unwrap();
        let word = qc
            .lines()
            .map(str::trim)
            .find(|w| !w.is_empty() && !w.contains(' ') && !fr.lines().any(|f| f.trim() == *w))
            .unwrap();
        assert_eq!(run(&format!("Il a dit {word} hier."), "fr"), (1, true));
        assert_eq!(run("Il fait beau aujourd'hui.", "fr"), (0, true));
    }

    #[test]
    fn bad_config_names_key() {
        let dir = tempfile::tempdir().unwrap();
        let e = crate::kit::build_in(&DEF, "dw", "lists_dir = \"nope\"", Purpose::Run, dir.path());
        assert_eq!(e.err().unwrap().key, "lists_dir");
    }
}
