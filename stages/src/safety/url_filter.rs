//! `safety.url_filter`: drops pages by their URL (the FineWeb URL filter, datatrove's
//! `URLFilter`, is the model).
//!
//! A page fails when, in this order:
//! - its host or any parent domain of it is on a domain blocklist (`blocked_domain`): lists in
//!   the UT1 format (one domain per line, `#` comments), such as UT1's `adult/domains`;
//! - its URL without scheme and `www.`, or any `/`-prefix of that, is on a URL blocklist
//!   (`blocked_url`; UT1's `urls` files);
//! - one of its words (runs of ASCII letters and digits, lower-cased) is a banned word
//!   (`banned_word`);
//! - at least `soft_word_threshold` distinct soft-banned words are among its words
//!   (`soft_banned_words`);
//! - its letters and digits, concatenated and lower-cased, contain a banned sub-word
//!   (`banned_subword`, found with Aho-Corasick: `freexxxvideos` holds `xxx`).
//!
//! Blocklists hold millions of entries: they are kept as a sorted array of 64-bit hashes of
//! the normalized entries (8 bytes each, no hash-table overhead), read with a streaming parser
//! (gzip allowed), and shared by all threads. `scripts/ut1_lists.py` extracts the UT1 adult
//! lists that FineWeb uses from the datatrove wheel. Word lists follow datatrove's files: one entry per line, lines starting with `#`
//! are disabled, entries are normalized like URLs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustc_hash::FxHashSet;
use serde::Deserialize;

use crate::config::{ConfigError, Purpose, StageArgs};
use crate::declare::{count, Bool, Bound, Declare, Declared, Sig, I64};
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::Document;

/// A set of domains or URLs, stored as a sorted array of 64-bit hashes of their normalized
/// form: 8 bytes an entry (UT1's 4.56M adult domains take 36 MB), looked up by binary search.
#[derive(Default)]
pub struct Blocklist {
    hashes: Vec<u64>,
}

fn key(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

/// A domain entry or host: lower case, no trailing dot, no `www.`.
pub fn normalize_domain(s: &str) -> String {
    let s = s.trim().trim_end_matches('.').to_ascii_lowercase();
    s.strip_prefix("www.").map(str::to_string).unwrap_or(s)
}

/// A URL entry or URL: no scheme, no `www.`, host lower-cased, no fragment, no trailing `/`.
pub fn normalize_url(s: &str) -> String {
    let s = s.trim();
    let s = s.split_once("://").map(|(_, r)| r).unwrap_or(s);
    let s = s.split('#').next().unwrap_or(s);
    let (host, path) = match s.find(['/', '?']) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let host = host.rsplit('@').next().unwrap_or(host);
    let host = host.split(':').next().unwrap_or(host);
    let mut out = normalize_domain(host);
    out.push_str(path.trim_end_matches('/'));
    out
}

/// The key of one list line; `None` for a blank or `#` line.
fn entry_key(line: &[u8], url: bool) -> Option<u64> {
    let line = line.trim_ascii();
    if line.is_empty() || line[0] == b'#' {
        return None;
    }
    let plain = !url
        && line
            .iter()
            .all(|&b| b.is_ascii() && !b.is_ascii_uppercase() && !b.is_ascii_whitespace())
        && !line.starts_with(b"www.")
        && !line.ends_with(b".");
    if plain {
        // Already normalized: the common case in UT1 files.
        return Some(xxhash_rust::xxh3::xxh3_64(line));
    }
    let s = String::from_utf8_lossy(line);
    let s = s.trim();
    Some(if url {
        key(&normalize_url(s))
    } else {
        key(&normalize_domain(s))
    })
}

impl Blocklist {
    pub fn len(&self) -> usize {
        self.hashes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Adds every entry of a UT1-style list (plain or gzip). `url` selects URL normalization.
    ///
    /// Lists are millions of lines, read on every run: lines are cut in place from 4 MiB
    /// chunks (no per-line copy), and an entry that is already normalized (ASCII, lower case,
    /// no `www.`, no trailing dot: nearly every UT1 line) is hashed as it stands.
    pub fn load(&mut self, path: &Path, url: bool) -> std::io::Result<usize> {
        let f = std::fs::File::open(path)?;
        let mut input: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(flate2::read::MultiGzDecoder::new(f))
        } else {
            // About 27 bytes a line in UT1 files: reserve once instead of doubling (a doubling
            // copy would hold both arrays at once).
            let size = std::fs::metadata(path)?.len() as usize;
            self.hashes.reserve(size / 24);
            Box::new(f)
        };
        const CHUNK: usize = 4 << 20;
        let mut buf = vec![0u8; CHUNK];
        let (mut filled, mut n) = (0usize, 0usize);
        loop {
            let k = input.read(&mut buf[filled..])?;
            let end = filled + k;
            // Whole lines of this chunk; the last partial line moves to the front.
            let upto = if k == 0 {
                end
            } else {
                match memchr::memrchr(b'\n', &buf[..end]) {
                    Some(i) => i + 1,
                    // A line longer than the buffer: grow it.
                    None if end == buf.len() => {
                        buf.resize(buf.len() * 2, 0);
                        filled = end;
                        continue;
                    }
                    None => {
                        filled = end;
                        continue;
                    }
                }
            };
            for line in buf[..upto].split(|&b| b == b'\n') {
                if let Some(h) = entry_key(line, url) {
                    self.hashes.push(h);
                    n += 1;
                }
            }
            if k == 0 {
                break;
            }
            buf.copy_within(upto..end, 0);
            filled = end - upto;
        }
        self.hashes.sort_unstable();
        self.hashes.dedup();
        // Shrinking copies the array: only worth it when much is unused.
        if self.hashes.capacity() > self.hashes.len() + self.hashes.len() / 4 {
            self.hashes.shrink_to_fit();
        }
        Ok(n)
    }

    pub fn insert(&mut self, entry: &str, url: bool) {
        let k = if url {
            normalize_url(entry)
        } else {
            normalize_domain(entry)
        };
        let k = key(&k);
        if let Err(i) = self.hashes.binary_search(&k) {
            self.hashes.insert(i, k);
        }
    }

    fn contains(&self, k: u64) -> bool {
        self.hashes.binary_search(&k).is_ok()
    }

    /// Bytes held by the entries.
    pub fn heap_bytes(&self) -> usize {
        self.hashes.capacity() * 8
    }

    /// Whether `host` or one of its parent domains is listed.
    pub fn has_domain(&self, host: &str) -> bool {
        let host = normalize_domain(host);
        let mut h = host.as_str();
        loop {
            if self.contains(key(h)) {
                return true;
            }
            match h.find('.') {
                Some(i) => h = &h[i + 1..],
                None => return false,
            }
        }
    }

    /// Whether the normalized URL or one of its `/`-prefixes (down to the host) is listed.
    pub fn has_url(&self, url: &str) -> bool {
        let u = normalize_url(url);
        let mut end = u.len();
        loop {
            if self.contains(key(&u[..end])) {
                return true;
            }
            match u[..end].rfind('/') {
                Some(i) => end = i,
                None => return false,
            }
        }
    }
}

/// The host of a URL (between the scheme and the first `/`, `?` or `#`), without user or port.
pub fn url_host(url: &str) -> &str {
    let s = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let s = &s[..s.find(['/', '?', '#']).unwrap_or(s.len())];
    let s = s.rsplit('@').next().unwrap_or(s);
    s.split(':').next().unwrap_or(s)
}

/// A word list file: one entry per line, `#` lines disabled, entries normalized to lower-case
/// letters and digits (as the URL is).
pub fn read_word_list(path: &Path) -> std::io::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(normalize_word)
        .filter(|w| !w.is_empty())
        .collect())
}

fn normalize_word(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `[stages.url_filter]`: blocklists and word lists (paths relative to the config file).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct UrlFilterConfig {
    /// UT1-format domain lists (plain or `.gz`), e.g. `["blacklists/adult/domains"]`.
    pub domain_lists: Vec<String>,
    /// UT1-format URL lists.
    pub url_lists: Vec<String>,
    /// Extra blocked domains.
    pub domains: Vec<String>,
    /// Files of banned words (any of them in the URL's words fails the page).
    pub banned_words_files: Vec<String>,
    /// Banned words given inline.
    pub banned_words: Vec<String>,
    /// Files of banned sub-words (found anywhere in the URL's letters and digits).
    pub banned_subwords_files: Vec<String>,
    /// Banned sub-words given inline.
    pub banned_subwords: Vec<String>,
    /// Files of soft-banned words (`soft_word_threshold` of them fail the page).
    pub soft_banned_words_files: Vec<String>,
    /// Soft-banned words given inline.
    pub soft_banned_words: Vec<String>,
    /// Distinct soft-banned words needed to fail a page (datatrove: 2).
    pub soft_word_threshold: Option<u64>,
}

pub static DEF: StageDef = StageDef {
    kind: "safety.url_filter",
    about: "URL blocklists (UT1 domains and URLs), banned words, sub-words and soft-banned words in the URL",
    example: "domains = [\"bad.example\"]\nbanned_words = [\"xxx\"]\nbanned_subwords = [\"porn\"]\nsoft_banned_words = [\"sexy\", \"babes\"]\nsoft_word_threshold = 2",
    build,
};

/// The loaded lists, shared by every thread.
pub struct UrlLists {
    pub domains: Blocklist,
    pub urls: Blocklist,
    pub banned: FxHashSet<String>,
    pub soft: FxHashSet<String>,
    pub subwords: Option<aho_corasick::AhoCorasick>,
}

pub struct UrlFilter {
    name: String,
    lists: Option<Arc<UrlLists>>,
    sig_domain: Sig<Bool>,
    sig_url: Sig<Bool>,
    sig_banned: Sig<I64>,
    sig_soft: Sig<I64>,
    sig_sub: Sig<I64>,
    declared: Declared,
}

fn paths(args: &StageArgs, key: &str, list: &[String]) -> Result<Vec<PathBuf>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, p)| args.resolve_path(&format!("{key}[{i}]"), p))
        .collect()
}

/// Loads every list of a config (what the stage does at build time).
pub fn load_lists(args: &StageArgs, cfg: &UrlFilterConfig) -> Result<UrlLists, ConfigError> {
    let mut domains = Blocklist::default();
    for (i, p) in paths(args, "domain_lists", &cfg.domain_lists)?
        .iter()
        .enumerate()
    {
        domains.load(p, false).map_err(|e| {
            ConfigError::new(
                format!("domain_lists[{i}]"),
                format!("{}: {e}", p.display()),
            )
        })?;
    }
    for d in &cfg.domains {
        domains.insert(d, false);
    }
    let mut urls = Blocklist::default();
    for (i, p) in paths(args, "url_lists", &cfg.url_lists)?.iter().enumerate() {
        urls.load(p, true).map_err(|e| {
            ConfigError::new(format!("url_lists[{i}]"), format!("{}: {e}", p.display()))
        })?;
    }
    let words =
        |key: &str, files: &[String], extra: &[String]| -> Result<FxHashSet<String>, ConfigError> {
            let mut set: FxHashSet<String> = extra
                .iter()
                .map(|w| normalize_word(w))
                .filter(|w| !w.is_empty())
                .collect();
            for (i, p) in paths(args, key, files)?.iter().enumerate() {
                let l = read_word_list(p).map_err(|e| {
                    ConfigError::new(format!("{key}[{i}]"), format!("{}: {e}", p.display()))
                })?;
                set.extend(l);
            }
            Ok(set)
        };
    let banned = words(
        "banned_words_files",
        &cfg.banned_words_files,
        &cfg.banned_words,
    )?;
    let soft = words(
        "soft_banned_words_files",
        &cfg.soft_banned_words_files,
        &cfg.soft_banned_words,
    )?;
    let sub = words(
        "banned_subwords_files",
        &cfg.banned_subwords_files,
        &cfg.banned_subwords,
    )?;
    let mut sub: Vec<String> = sub.into_iter().collect();
    sub.sort();
    let subwords = if sub.is_empty() {
        None
    } else {
        Some(
            aho_corasick::AhoCorasick::new(&sub)
                .map_err(|e| ConfigError::new("banned_subwords", e.to_string()))?,
        )
    };
    Ok(UrlLists {
        domains,
        urls,
        banned,
        soft,
        subwords,
    })
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: UrlFilterConfig = args.parse()?;
    let lists = if args.purpose == Purpose::Run {
        Some(Arc::new(load_lists(args, &cfg)?))
    } else {
        // Check that the files exist without loading millions of entries.
        paths(args, "domain_lists", &cfg.domain_lists)?;
        paths(args, "url_lists", &cfg.url_lists)?;
        None
    };
    let mut d = Declare::new(args.name);
    let domain = d.signal::<Bool>("blocked_domain", "host or a parent domain is blocklisted");
    let url = d.signal::<Bool>("blocked_url", "URL or a prefix of it is blocklisted");
    let banned = d.signal::<I64>("banned_words", "distinct banned words in the URL");
    let soft = d.signal::<I64>("soft_banned_words", "distinct soft-banned words in the URL");
    let sub = d.signal::<I64>("banned_subwords", "banned sub-word matches in the URL");
    d.flag(domain, "blocked_domain");
    d.flag(url, "blocked_url");
    d.fixed(banned, Bound::Max, 0.0, "banned_word");
    // A threshold of 0 turns the soft-word rule off.
    let threshold = Some(cfg.soft_word_threshold.unwrap_or(2)).filter(|&t| t > 0);
    d.reach(
        soft,
        count(threshold),
        "soft_word_threshold",
        "soft_banned_words",
    );
    d.fixed(sub, Bound::Max, 0.0, "banned_subword");
    Ok(Built::Map(Box::new(UrlFilter {
        name: args.name.to_string(),
        lists,
        sig_domain: domain,
        sig_url: url,
        sig_banned: banned,
        sig_soft: soft,
        sig_sub: sub,
        declared: d.finish(),
    })))
}

/// What the URL checks found.
#[derive(Debug, Default, PartialEq)]
pub struct UrlVerdict {
    pub blocked_domain: bool,
    pub blocked_url: bool,
    pub banned_words: usize,
    pub soft_banned_words: usize,
    pub banned_subwords: usize,
}

impl UrlLists {
    pub fn check(&self, url: &str) -> UrlVerdict {
        let mut v = UrlVerdict {
            blocked_domain: !self.domains.is_empty() && self.domains.has_domain(url_host(url)),
            blocked_url: !self.urls.is_empty() && self.urls.has_url(url),
            ..Default::default()
        };
        let lower = url.to_ascii_lowercase();
        let mut words: Vec<&str> = lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        words.sort_unstable();
        words.dedup();
        v.banned_words = words.iter().filter(|w| self.banned.contains(**w)).count();
        v.soft_banned_words = words.iter().filter(|w| self.soft.contains(**w)).count();
        if let Some(ac) = &self.subwords {
            let joined: String = lower.chars().filter(char::is_ascii_alphanumeric).collect();
            v.banned_subwords = ac.find_iter(&joined).count();
        }
        v
    }
}

impl Stage for UrlFilter {
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
        let v = lists.check(&doc.url);
        let s = &mut doc.signals;
        self.sig_domain.set(s, v.blocked_domain);
        self.sig_url.set(s, v.blocked_url);
        self.sig_banned.set(s, v.banned_words as i64);
        self.sig_soft.set(s, v.soft_banned_words as i64);
        self.sig_sub.set(s, v.banned_subwords as i64);
        Outcome::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn judge(s: &dyn Stage, url: &str) -> Outcome {
        let mut d = Document::new("u", "text");
        d.url = url.to_string();
        s.process(&mut d);
        s.judge(&d.signals)
    }

    #[test]
    fn example_config_and_each_rule() {
        let s = crate::kit::stage(&DEF, "url", DEF.example).unwrap();
        assert_eq!(
            judge(s.as_ref(), "https://www.wikipedia.org/wiki/Lighthouse"),
            Outcome::Keep
        );
        assert_eq!(
            judge(s.as_ref(), "http://cdn.BAD.example:8080/x"),
            Outcome::Drop("blocked_domain")
        );
        assert_eq!(
            judge(s.as_ref(), "https://site.com/xxx/page"),
            Outcome::Drop("banned_word")
        );
        assert_eq!(
            judge(s.as_ref(), "https://site.com/sexy-babes"),
            Outcome::Drop("soft_banned_words")
        );
        assert_eq!(
            judge(s.as_ref(), "https://site.com/sexy-cars"),
            Outcome::Keep
        );
        assert_eq!(
            judge(s.as_ref(), "https://freepornvids.com/"),
            Outcome::Drop("banned_subword")
        );
        // A page without URL is checked as an empty URL.
        assert_eq!(judge(s.as_ref(), ""), Outcome::Keep);
    }

    #[test]
    fn ut1_lists_and_datatrove_word_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("domains"),
            "# adult\nbad.example\nWWW.Other.Example.\n\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("urls"), "good.example/bad/path\n").unwrap();
        std::fs::write(dir.path().join("words.txt"), "#disabled\nNaughty\n").unwrap();
        let build = |body: &str| crate::kit::build_in(&DEF, "url", body, Purpose::Run, dir.path());
        let Ok(Built::Map(s)) = build(
            "domain_lists = [\"domains\"]\nurl_lists = [\"urls\"]\nbanned_words_files = [\"words.txt\"]",
        ) else {
            panic!("build")
        };
        assert_eq!(
            judge(s.as_ref(), "https://a.b.bad.example/"),
            Outcome::Drop("blocked_domain")
        );
        assert_eq!(
            judge(s.as_ref(), "https://other.example/"),
            Outcome::Drop("blocked_domain")
        );
        assert_eq!(judge(s.as_ref(), "https://notbad.example/"), Outcome::Keep);
        assert_eq!(
            judge(s.as_ref(), "http://www.good.example/bad/path/deeper?q=1"),
            Outcome::Drop("blocked_url")
        );
        assert_eq!(
            judge(s.as_ref(), "http://good.example/bad/pathology"),
            Outcome::Keep
        );
        assert_eq!(
            judge(s.as_ref(), "http://good.example/naughty-things"),
            Outcome::Drop("banned_word")
        );
        assert_eq!(
            judge(s.as_ref(), "http://good.example/disabled"),
            Outcome::Keep
        );
        let e = build("domain_lists = [\"missing\"]").err().unwrap();
        assert_eq!(e.key, "domain_lists[0]");
    }

    #[test]
    fn a_million_entry_blocklist_loads_quickly() {
        // A generated UT1-style list of one million domains, gzip-compressed like the
        // published tarballs.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("domains.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        for i in 0..1_000_000u64 {
            let h = xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes());
            writeln!(
                gz,
                "site{:x}.example{}",
                h,
                ["com", "net", "org", "xxx"][(h % 4) as usize]
            )
            .unwrap();
        }
        gz.finish().unwrap();
        let t0 = std::time::Instant::now();
        let mut b = Blocklist::default();
        let n = b.load(&path, false).unwrap();
        let secs = t0.elapsed().as_secs_f64();
        eprintln!("loaded {n} domains in {secs:.2} s");
        assert_eq!(n, 1_000_000);
        assert!(b.len() >= 999_990);
        let h = xxhash_rust::xxh3::xxh3_64(&777u64.to_le_bytes());
        let listed = format!(
            "site{:x}.example{}",
            h,
            ["com", "net", "org", "xxx"][(h % 4) as usize]
        );
        assert!(b.has_domain(&format!("www.sub.{listed}")));
        assert!(!b.has_domain("site0.examplecom"));
        // Seconds, not minutes, even in a debug build.
        assert!(secs < 30.0, "{secs}");
    }

    #[test]
    fn chunked_loading_keys_every_line_as_insert_does() {
        // Lines of every shape (upper case, `www.`, trailing dots, CRLF, blanks, comments,
        // non-ASCII, spaces), over 4 MiB so that lines straddle the loader's chunks, and a
        // last line without a newline: the same keys as inserting each entry.
        let dir = tempfile::tempdir().unwrap();
        for url in [false, true] {
            let path = dir.path().join(format!("list-{url}"));
            let mut text = String::new();
            let mut want = Blocklist::default();
            for i in 0..200_000u32 {
                let e = match i % 7 {
                    0 => format!("site{i}.example.com"),
                    1 => format!("WWW.Site{i}.Example.ORG."),
                    2 => format!("  bücher{i}.de  "),
                    3 => format!("shop{i}.example.net/path/{i}?q=1"),
                    4 => format!("http://www.News{i}.co.uk/a/b/"),
                    5 => format!("a b{i}.com"),
                    _ => format!("x{i}.io"),
                };
                text.push_str(&e);
                text.push_str(if i % 3 == 0 { "\r\n" } else { "\n" });
                want.insert(e.trim(), url);
                if i % 1000 == 0 {
                    text.push_str("# a comment\n\n");
                }
            }
            text.push_str("last.example.com");
            want.insert("last.example.com", url);
            assert!(text.len() > 4 << 20);
            std::fs::write(&path, &text).unwrap();
            let mut got = Blocklist::default();
            assert_eq!(got.load(&path, url).unwrap(), 200_001);
            assert_eq!(got.hashes, want.hashes, "url = {url}");
        }
    }
}
