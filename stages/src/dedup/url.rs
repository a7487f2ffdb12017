//! `dedup.url`: one document per normalized URL, the most recent crawl by default.
//!
//! Common Crawl fetches the same page many times, under spellings that differ only in ways a
//! server ignores. The key is the URL normalized as follows (each rule is a test below):
//!
//! - scheme: `http` and `https` are the same page (`ignore_scheme`, on by default); the
//!   scheme and host are lower-cased, internationalized hosts are punycoded, a trailing dot of
//!   the host is dropped; default ports (80, 443) are dropped; user and password are dropped;
//! - path: dot segments resolved, percent-escapes upper-cased and unreserved characters
//!   decoded, session parameters (`;jsessionid=...`) removed, a trailing slash removed (except
//!   the root `/`);
//! - query: tracking parameters removed (`utm_*`, `fbclid`, `gclid`, `msclkid`, session ids,
//!   ... plus `strip_params`), empty parameters dropped, the rest sorted by name (values of one
//!   name keep their order); an empty query is dropped;
//! - the fragment is dropped.
//!
//! A URL that does not parse is keyed by its trimmed text; a document without a URL has no key.
//! The survivor of a URL is chosen by `keep` (default `newest`: the latest `crawl_date`; ties
//! and undated copies go to input order).

use serde::Deserialize;

use super::keep::{Keep, KeepRule};
use super::keyed::KeyedDedup;
use crate::config::{check_range, ConfigError, StageArgs};
use crate::stage::Built;
use crate::stage::StageDef;

/// `[stages.url_dedup]`, `type = "dedup.url"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlDedupConfig {
    /// Which copy of a URL stays: `newest` (default), `oldest`, `first`, `highest`, `lowest`.
    #[serde(default = "newest")]
    pub keep: KeepRule,
    /// The signal compared by `keep = "highest"` / `"lowest"`.
    pub keep_signal: Option<String>,
    /// Treat `http://` and `https://` as the same page.
    #[serde(default = "yes")]
    pub ignore_scheme: bool,
    /// Treat `www.example.com` and `example.com` as the same host.
    #[serde(default)]
    pub strip_www: bool,
    /// More query parameters to remove (names, case-insensitive; a trailing `*` matches a
    /// prefix), on top of the built-in tracking list.
    #[serde(default)]
    pub strip_params: Vec<String>,
    /// Sections of the key files: tasks of the `groups` step (raise it for large crawls).
    #[serde(default = "shards")]
    pub shards: usize,
}

fn newest() -> KeepRule {
    KeepRule::Newest
}
fn yes() -> bool {
    true
}
fn shards() -> usize {
    16
}

pub static DEF: StageDef = StageDef {
    kind: "dedup.url",
    about: "One document per normalized URL (the most recent crawl by default)",
    example: "keep = \"newest\"\nstrip_params = [\"sessionid\", \"ref_*\"]",
    build,
};

/// Query parameters that track the visitor, not the page (a trailing `*`: a prefix).
pub const TRACKING_PARAMS: &[&str] = &[
    "utm_*",
    "fbclid",
    "gclid",
    "gclsrc",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "yclid",
    "twclid",
    "ttclid",
    "li_fat_id",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
    "igshid",
    "mkt_tok",
    "_hsenc",
    "_hsmi",
    "__hstc",
    "__hssc",
    "__hsfp",
    "hsctatracking",
    "oly_anon_id",
    "oly_enc_id",
    "vero_conv",
    "vero_id",
    "wickedid",
    "rb_clickid",
    "s_cid",
    "ref_src",
    "jsessionid",
    "phpsessid",
    "sessionid",
    "cfid",
    "cftoken",
    "sid_*",
];

/// Path parameters that carry a session (`/page;jsessionid=ABC`).
const SESSION_PATH_PARAMS: &[&str] = &["jsessionid", "phpsessid", "sessionid", "sid"];

/// URL normalization settings.
#[derive(Clone, Debug)]
pub struct UrlRules {
    pub ignore_scheme: bool,
    pub strip_www: bool,
    /// Lower-case parameter names or prefixes (ending in `*`) to remove.
    pub strip_params: Vec<String>,
}

impl Default for UrlRules {
    fn default() -> Self {
        UrlRules {
            ignore_scheme: true,
            strip_www: false,
            strip_params: TRACKING_PARAMS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl UrlRules {
    fn strips(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.strip_params.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *p,
        })
    }
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: UrlDedupConfig = args.parse()?;
    check_range("shards", cfg.shards, 1, 65536)?;
    let keep = Keep::new(cfg.keep, cfg.keep_signal)?;
    let mut rules = UrlRules {
        ignore_scheme: cfg.ignore_scheme,
        strip_www: cfg.strip_www,
        ..UrlRules::default()
    };
    for (i, p) in cfg.strip_params.iter().enumerate() {
        if p.is_empty() || p == "*" {
            return Err(ConfigError::new(
                format!("strip_params[{i}]"),
                "expected a parameter name or a prefix ending in *",
            ));
        }
        rules.strip_params.push(p.to_ascii_lowercase());
    }
    Ok(Built::Global(Box::new(KeyedDedup::new(
        args.name,
        cfg.shards,
        keep,
        Box::new(move |doc| {
            let u = doc.url.trim();
            if u.is_empty() {
                return None;
            }
            let norm = normalize_url(u, &rules).unwrap_or_else(|| format!("raw:{u}"));
            Some(xxhash_rust::xxh3::xxh3_128(norm.as_bytes()))
        }),
    ))))
}

/// The normalized form of a URL (see the module docs), or `None` when it does not parse.
pub fn normalize_url(raw: &str, rules: &UrlRules) -> Option<String> {
    let raw = raw.trim();
    let parsed = ::url::Url::parse(raw)
        .ok()
        .filter(|u| u.has_host())
        .or_else(|| {
            // "example.com/page": no scheme.
            (!raw.contains("://"))
                .then(|| ::url::Url::parse(&format!("http://{raw}")).ok())
                .flatten()
                .filter(|u| u.has_host())
        })?;
    let scheme = parsed.scheme();
    let web = scheme == "http" || scheme == "https";
    let mut out = String::with_capacity(raw.len());
    if web && rules.ignore_scheme {
        out.push_str("//");
    } else {
        out.push_str(scheme);
        out.push_str("://");
    }
    let mut host = parsed.host_str()?.trim_end_matches('.').to_string();
    if rules.strip_www {
        if let Some(h) = host.strip_prefix("www.") {
            host = h.to_string();
        }
    }
    out.push_str(&host);
    if let Some(port) = parsed.port() {
        // `Url` already drops the scheme's default port; with schemes merged, both are default.
        if !(web && rules.ignore_scheme && (port == 80 || port == 443)) {
            out.push(':');
            out.push_str(&port.to_string());
        }
    }
    // Path: drop session parameters, normalize escapes, drop a trailing slash.
    let mut path = String::with_capacity(parsed.path().len());
    for (i, seg) in parsed.path().split('/').enumerate() {
        if i > 0 {
            path.push('/');
        }
        let mut parts = seg.split(';');
        path.push_str(&normalize_escapes(parts.next().unwrap_or("")));
        for param in parts {
            let name = param.split('=').next().unwrap_or("").to_ascii_lowercase();
            if !SESSION_PATH_PARAMS.contains(&name.as_str()) {
                path.push(';');
                path.push_str(&normalize_escapes(param));
            }
        }
    }
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    if path.is_empty() {
        path.push('/');
    }
    out.push_str(&path);
    if let Some(q) = parsed.query() {
        let mut params: Vec<(String, &str)> = q
            .split('&')
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                let name = p.split('=').next().unwrap_or("");
                let decoded = normalize_escapes(name);
                (!decoded.is_empty() && !rules.strips(&decoded)).then_some((decoded, p))
            })
            .collect();
        // Stable: values of a repeated name keep their order.
        params.sort_by(|a, b| a.0.cmp(&b.0));
        for (i, (_, p)) in params.iter().enumerate() {
            out.push(if i == 0 { '?' } else { '&' });
            out.push_str(&normalize_escapes(p));
        }
    }
    Some(out)
}

/// Upper-cases percent-escapes and decodes those of unreserved characters (RFC 3986 6.2.2).
fn normalize_escapes(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let v = (h * 16 + l) as u8;
                if v.is_ascii_alphanumeric() || b"-._~".contains(&v) {
                    out.push(v as char);
                } else {
                    out.push('%');
                    out.push(b[i + 1].to_ascii_uppercase() as char);
                    out.push(b[i + 2].to_ascii_uppercase() as char);
                }
                i += 3;
                continue;
            }
        }
        // Copy one UTF-8 character.
        let ch = s[i..].chars().next().expect("char boundary");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::testing::{build as build_stage, build_err, doc, run};
    use crate::stage::Outcome;

    fn n(u: &str) -> String {
        normalize_url(u, &UrlRules::default()).unwrap()
    }

    #[test]
    fn normalization_rules() {
        // Scheme, host case, default ports, trailing dot.
        assert_eq!(n("HTTPS://Example.COM:443/a"), "//example.com/a");
        assert_eq!(n("http://example.com:80/a"), "//example.com/a");
        assert_eq!(n("http://example.com./a"), "//example.com/a");
        assert_eq!(n("http://example.com:8080/a"), "//example.com:8080/a");
        assert_eq!(n("ftp://Example.com/a"), "ftp://example.com/a");
        // Trailing slash, fragments, dot segments, escapes, user info.
        assert_eq!(n("http://example.com/a/b/"), "//example.com/a/b");
        assert_eq!(n("http://example.com"), "//example.com/");
        assert_eq!(n("http://example.com/#top"), "//example.com/");
        assert_eq!(n("http://example.com/a/./c/../b#x"), "//example.com/a/b");
        assert_eq!(
            n("http://example.com/%7euser/%2fx"),
            "//example.com/~user/%2Fx"
        );
        assert_eq!(n("http://bob:pw@example.com/a"), "//example.com/a");
        // Tracking parameters, session ids, parameter order, empty queries.
        assert_eq!(
            n("https://example.com/p?utm_source=x&id=3&fbclid=abc&UTM_Medium=y"),
            "//example.com/p?id=3"
        );
        assert_eq!(
            n("https://example.com/p?b=2&a=1&b=1"),
            "//example.com/p?a=1&b=2&b=1"
        );
        assert_eq!(n("https://example.com/p?"), "//example.com/p");
        assert_eq!(n("https://example.com/p?&&"), "//example.com/p");
        assert_eq!(
            n("http://cpdlab.eun.org/related-projects;jsessionid=2015C1DD"),
            "//cpdlab.eun.org/related-projects"
        );
        // IDN hosts, missing scheme.
        assert_eq!(n("http://Bücher.example/x"), "//xn--bcher-kva.example/x");
        assert_eq!(n("example.com/x/"), "//example.com/x");
        // Different pages stay different.
        assert_ne!(
            n("http://example.com/a?id=1"),
            n("http://example.com/a?id=2")
        );
        assert_ne!(n("http://example.com/A"), n("http://example.com/a"));
        let strict = UrlRules {
            ignore_scheme: false,
            strip_www: true,
            ..UrlRules::default()
        };
        assert_eq!(
            normalize_url("HTTP://www.Example.com/", &strict).unwrap(),
            "http://example.com/"
        );
        assert!(normalize_url("not a url", &UrlRules::default()).is_none());
    }

    #[test]
    fn keeps_the_newest_copy_of_each_url() {
        let stage = build_stage(&DEF, "url", DEF.example);
        let mut docs = vec![
            doc("a", "http://example.com/page/", "old copy"),
            doc("b", "https://EXAMPLE.com/page?utm_source=feed", "new copy"),
            doc("c", "https://example.com/other", "unique"),
            doc("d", "", "no url"),
            doc(
                "e",
                "http://example.com/page#x",
                "same date as b, later in input",
            ),
            doc("f", "not a url", "unparsable"),
            doc("g", "not a url", "unparsable copy"),
        ];
        let dates = [Some(100), Some(300), Some(50), None, Some(300), None, None];
        for (d, t) in docs.iter_mut().zip(dates) {
            d.crawl_date = t;
        }
        let second = docs.split_off(4);
        let out = run(stage.as_ref(), vec![docs, second]);
        let kept: Vec<&str> = out
            .iter()
            .flatten()
            .filter(|(_, o)| o.is_keep())
            .map(|(d, _)| d.id.as_str())
            .collect();
        assert_eq!(kept, vec!["b", "c", "d", "f"]);
        let all: Vec<&(crate::Document, Outcome)> = out.iter().flatten().collect();
        let b = &all[1].0;
        assert_eq!(b.signals.i64("url.cluster_size"), Some(3));
        // The cluster id is the survivor's key (partition 0, row 1) on every copy.
        assert_eq!(b.signals.i64("url.cluster_id"), Some(1));
        assert_eq!(all[4].0.signals.i64("url.cluster_id"), Some(1));
        assert_eq!(all[4].1, Outcome::Drop("duplicate"));
        assert_eq!(all[2].0.signals.i64("url.cluster_size"), Some(1));
        assert_eq!(all[2].0.signals.i64("url.cluster_id"), None);
        assert_eq!(stage.judge(&all[0].0.signals), Outcome::Drop("duplicate"));
        assert_eq!(stage.judge(&b.signals), Outcome::Keep);
    }

    #[test]
    fn config_errors_name_the_key() {
        assert_eq!(build_err(&DEF, "shards = 0").key, "shards");
        assert_eq!(build_err(&DEF, "keep = \"highest\"").key, "keep_signal");
        assert_eq!(build_err(&DEF, "keep = \"best\"").key, "keep");
        assert_eq!(
            build_err(&DEF, "strip_params = [\"\"]").key,
            "strip_params[0]"
        );
        assert_eq!(build_err(&DEF, "shard = 3").key, "shard");
    }
}
