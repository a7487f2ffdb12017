//! The Public Suffix List: which part of a host is a public suffix (`com`, `co.uk`,
//! `github.io`), so that a host maps to its registered domain, the unit a site-level policy
//! judges (`news.bbc.co.uk` -> `bbc.co.uk`, `alice.github.io` stays `alice.github.io`).
//!
//! The list is read from a file in the publicsuffix.org format (Debian's `publicsuffix` package
//! installs it at [`DEFAULT_LIST`]): one rule per line, `//` comments, `*.` wildcards, `!`
//! exceptions; the `===BEGIN PRIVATE DOMAINS===` section holds suffixes run by companies
//! (blog and page hosts), used or not as the caller asks.

use std::path::Path;

use rustc_hash::FxHashSet;

/// Where Debian and Ubuntu install the list.
pub const DEFAULT_LIST: &str = "/usr/share/publicsuffix/public_suffix_list.dat";

/// The rules of a Public Suffix List.
#[derive(Default)]
pub struct SuffixList {
    rules: FxHashSet<String>,
    /// `*.ck` is stored as `ck`.
    wildcards: FxHashSet<String>,
    /// `!www.ck` is stored as `www.ck`.
    exceptions: FxHashSet<String>,
}

impl SuffixList {
    /// Reads a list; `private` includes the private-domains section.
    pub fn load(path: &Path, private: bool) -> std::io::Result<SuffixList> {
        Ok(Self::parse(&std::fs::read_to_string(path)?, private))
    }

    pub fn parse(text: &str, private: bool) -> SuffixList {
        let mut l = SuffixList::default();
        for line in text.lines() {
            let rule = line.split_whitespace().next().unwrap_or("");
            if line.contains("===BEGIN PRIVATE DOMAINS===") && !private {
                break;
            }
            if rule.is_empty() || rule.starts_with("//") {
                continue;
            }
            let rule = rule.to_lowercase();
            if let Some(r) = rule.strip_prefix('!') {
                l.exceptions.insert(r.to_string());
            } else if let Some(r) = rule.strip_prefix("*.") {
                l.wildcards.insert(r.to_string());
            } else {
                l.rules.insert(rule);
            }
        }
        l
    }

    pub fn len(&self) -> usize {
        self.rules.len() + self.wildcards.len() + self.exceptions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The byte offset in `host` where its public suffix starts (the longest matching rule;
    /// an unlisted top-level label is a suffix). `host` is lower case, without a final dot.
    fn suffix_start(&self, host: &str) -> usize {
        // Suffix candidates from the longest (the whole host) to the last label.
        let mut start = 0;
        loop {
            let cand = &host[start..];
            let parent = cand.find('.').map(|i| start + i + 1);
            if self.exceptions.contains(cand) {
                // The exception's own label is not part of the suffix.
                return parent.unwrap_or(start);
            }
            if self.rules.contains(cand) {
                return start;
            }
            if let Some(p) = parent {
                if self.wildcards.contains(&host[p..]) {
                    return start;
                }
                start = p;
            } else {
                return start;
            }
        }
    }

    /// The registered domain of a host: its public suffix and one label more, or `None` when
    /// the host is itself a public suffix (or empty).
    pub fn registered_domain<'a>(&self, host: &'a str) -> Option<&'a str> {
        if host.is_empty() {
            return None;
        }
        let s = self.suffix_start(host);
        if s == 0 {
            return None;
        }
        let label = host[..s - 1].rfind('.').map_or(0, |i| i + 1);
        Some(&host[label..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: &str = "// ICANN\ncom\nuk\nco.uk\n*.ck\n!www.ck\njp\n*.kobe.jp\n!city.kobe.jp\n\
                         // ===BEGIN PRIVATE DOMAINS===\ngithub.io\n";

    #[test]
    fn rules_wildcards_exceptions_and_private_section() {
        let l = SuffixList::parse(RULES, true);
        let r = |h| l.registered_domain(h);
        assert_eq!(r("news.bbc.co.uk"), Some("bbc.co.uk"));
        assert_eq!(r("bbc.co.uk"), Some("bbc.co.uk"));
        assert_eq!(r("co.uk"), None);
        assert_eq!(r("a.b.example.com"), Some("example.com"));
        assert_eq!(r("x.y.ck"), Some("x.y.ck"));
        assert_eq!(r("y.ck"), None);
        assert_eq!(r("www.ck"), Some("www.ck"));
        assert_eq!(r("a.www.ck"), Some("www.ck"));
        assert_eq!(r("a.b.city.kobe.jp"), Some("city.kobe.jp"));
        assert_eq!(r("a.b.kobe.jp"), Some("a.b.kobe.jp"));
        assert_eq!(r("alice.github.io"), Some("alice.github.io"));
        // Unlisted top-level labels are suffixes too.
        assert_eq!(r("a.example.zzz"), Some("example.zzz"));
        assert_eq!(r("localhost"), None);
        let icann = SuffixList::parse(RULES, false);
        assert_eq!(
            icann.registered_domain("alice.github.io"),
            Some("github.io")
        );
    }

    #[test]
    fn the_installed_list() {
        let p = Path::new(DEFAULT_LIST);
        if !p.exists() {
            testkit::skip(format!(
                "{DEFAULT_LIST} is absent (apt install publicsuffix)"
            ));
            return;
        }
        let l = SuffixList::load(p, true).unwrap();
        assert!(l.len() > 5000, "{}", l.len());
        let r = |h| l.registered_domain(h);
        assert_eq!(r("www.bbc.co.uk"), Some("bbc.co.uk"));
        assert_eq!(r("de.wikipedia.org"), Some("wikipedia.org"));
        assert_eq!(r("someone.blogspot.com"), Some("someone.blogspot.com"));
        assert_eq!(r("a.b.c.kawasaki.jp"), Some("b.c.kawasaki.jp"));
        assert_eq!(r("city.kawasaki.jp"), Some("city.kawasaki.jp"));
    }
}
