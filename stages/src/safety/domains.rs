//! `safety.domains`: site-level safety, as Llama 3 removes "domains with harmful content" and
//! websites with "high volumes of PII", not only single pages.
//!
//! Per registered domain (public-suffix aware: `news.bbc.co.uk` counts for `bbc.co.uk`, each
//! `*.github.io` site for itself), it aggregates over the run what earlier stages of its phase
//! measured or decided:
//! - PII matches per 1,000 words (the `total` signal of a `safety.pii` stage, `pii_stage`);
//! - the share of pages that `dirty_stages` (e.g. `safety.dirty_words`) dropped or flagged;
//! - the share of pages that `blocklist_stages` (e.g. `safety.url_filter`) dropped or flagged;
//! - the share of pages that `quality_stages` (heuristic filters) dropped or flagged.
//!
//! A domain with at least `min_pages` pages whose figure exceeds a `max_*` threshold is
//! offending: every page of it is dropped (or flagged in tag mode) in the next phase, with the
//! reason (`pii_site`, `dirty_site`, `blocklisted_site`, `low_quality_site`, checked in this
//! order) and the domain's figures in its signals. Domains on the allow-list (`allow`,
//! `allow_lists`; a listed domain covers its subdomains) are never offending.
//!
//! ```text
//! map k:  collect   per partition: domain -> counts, one sorted section per shard
//! aggregate         one task per shard: merge the sections of every partition into one map
//!                   (a shard holds 1/shards of the domains), judge each domain
//! report            one task: removed_domains.json (totals per reason, top domains by pages)
//! map k+1: apply    pages of offending domains get the figures and the verdict
//! ```
//!
//! With a dedup history (`[history]`, nightly runs), the aggregate step adds the counts that
//! earlier nights measured for tonight's domains, judges the sum, adds tonight's own counts
//! as a new generation, and retracts by domain the pages earlier nights kept of a site that
//! only tonight's figures make offending ([`history`]).
//!
//! Only offending domains reach the appliers, and only their pages carry the signals, so a
//! relaxed threshold can be re-judged from stored signals; a stricter one needs a re-run.
//! Pages dropped by a stage of the same phase are counted (the runner shows collectors
//! dropped pages too); pages dropped in earlier phases are not seen, so this stage belongs in
//! the phase of the stages it reads (right after the safety stages, or after the filters).

pub mod history;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Deserialize;

use super::suffix::{SuffixList, DEFAULT_LIST};
use super::url_filter::{normalize_domain, url_host};
use crate::config::{check_range, ConfigError, Purpose, StageArgs};
use crate::declare::{Declare, Declared, Sig, Str, F64, I64};
use crate::error::{Error, Result};
use crate::signals::Signals;
use crate::stage::StageDef;
use crate::stage::{
    Applier, Built, Collector, GlobalStage, GlobalStep, Outcome, PartitionCtx, StepCtx,
};
use crate::stats::StepStats;
use crate::{Document, Verdict};

/// `[stages.NAME]`, `type = "safety.domains"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainsConfig {
    /// Domains with fewer pages in the run are never offending.
    #[serde(default = "min_pages")]
    pub min_pages: u64,
    /// The `safety.pii` stage whose `NAME.total` signal counts a page's PII matches.
    pub pii_stage: Option<String>,
    /// A domain with more PII matches per 1,000 words is offending (`pii_site`).
    pub max_pii_per_1k_words: Option<f64>,
    /// Stages whose drops and flags mark a page as dirty (bad words).
    #[serde(default)]
    pub dirty_stages: Vec<String>,
    /// A domain with a larger share of dirty pages is offending (`dirty_site`).
    pub max_dirty_share: Option<f64>,
    /// Stages whose drops and flags mark a page as blocklisted (URL lists).
    #[serde(default)]
    pub blocklist_stages: Vec<String>,
    /// A domain with a larger share of blocklisted pages is offending (`blocklisted_site`).
    pub max_blocklist_share: Option<f64>,
    /// Stages whose drops and flags mark a page as low quality (heuristic filters).
    #[serde(default)]
    pub quality_stages: Vec<String>,
    /// A domain with a larger share of low-quality pages is offending (`low_quality_site`).
    pub max_quality_share: Option<f64>,
    /// Domains never judged offending (with their subdomains).
    #[serde(default)]
    pub allow: Vec<String>,
    /// Files of such domains, one per line, `#` comments.
    #[serde(default)]
    pub allow_lists: Vec<String>,
    /// A Public Suffix List file (default: Debian's `publicsuffix` package).
    pub public_suffix_list: Option<String>,
    /// Whether the list's private section counts (`*.github.io`, `*.blogspot.com` sites are
    /// then separate domains).
    #[serde(default = "yes")]
    pub private_suffixes: bool,
    /// Sections of the collected counts: tasks of the `aggregate` step (raise for big crawls).
    #[serde(default = "shards")]
    pub shards: usize,
    /// Offending domains listed by name in `removed_domains.json`.
    #[serde(default = "top")]
    pub top: usize,
}

fn min_pages() -> u64 {
    5
}
fn yes() -> bool {
    true
}
fn shards() -> usize {
    16
}
fn top() -> usize {
    100
}

pub static DEF: StageDef = StageDef {
    kind: "safety.domains",
    about: "Site-level safety: drops every page of a domain with too much PII, dirty, blocklisted or low-quality pages",
    example: "min_pages = 5\npii_stage = \"pii\"\nmax_pii_per_1k_words = 5.0\ndirty_stages = [\"dirty\"]\nmax_dirty_share = 0.3\nblocklist_stages = [\"urls\"]\nmax_blocklist_share = 0.2\nallow = [\"wikipedia.org\"]",
    build,
};

/// Counts of one domain (or of one page).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub pages: u64,
    /// Words of the pages that carry the PII signal, and their PII matches.
    pub words: u64,
    pub pii: u64,
    pub dirty: u64,
    pub blocked: u64,
    pub low_quality: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.pages += o.pages;
        self.words += o.words;
        self.pii += o.pii;
        self.dirty += o.dirty;
        self.blocked += o.blocked;
        self.low_quality += o.low_quality;
    }

    pub fn figures(&self) -> Figures {
        let share = |n: u64| n as f64 / self.pages.max(1) as f64;
        Figures {
            pages: self.pages,
            pii_per_1k_words: if self.words == 0 {
                0.0
            } else {
                self.pii as f64 * 1000.0 / self.words as f64
            },
            dirty_share: share(self.dirty),
            blocklist_share: share(self.blocked),
            quality_share: share(self.low_quality),
        }
    }
}

/// A domain's figures, as its pages' signals carry them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Figures {
    pub pages: u64,
    pub pii_per_1k_words: f64,
    pub dirty_share: f64,
    pub blocklist_share: f64,
    pub quality_share: f64,
}

/// The drop reasons, in the order the rules check them.
const REASONS: [&str; 4] = [
    "pii_site",
    "dirty_site",
    "blocklisted_site",
    "low_quality_site",
];

/// How a page maps to its site and what it counts for.
struct Inner {
    name: String,
    shards: usize,
    top: usize,
    pii_signal: Option<String>,
    dirty: FxHashSet<String>,
    blocklist: FxHashSet<String>,
    quality: FxHashSet<String>,
    allow: FxHashSet<String>,
    /// Loaded for runs (not for selection, which only judges stored signals).
    suffixes: Option<SuffixList>,
    sig_domain: Sig<Str>,
    sig_pages: Sig<I64>,
    sig_pii: Sig<F64>,
    sig_dirty: Sig<F64>,
    sig_blocked: Sig<F64>,
    sig_quality: Sig<F64>,
    /// The signals and the site rules: a domain's figures are judged by them in the
    /// aggregation, and its pages' signals by them in selection.
    declared: Declared,
}

pub struct Domains {
    inner: Arc<Inner>,
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: DomainsConfig = args.parse()?;
    if cfg.min_pages == 0 {
        return Err(ConfigError::new("min_pages", "must be at least 1"));
    }
    check_range("shards", cfg.shards, 1, 1 << 16)?;
    for (key, v) in [
        ("max_dirty_share", cfg.max_dirty_share),
        ("max_blocklist_share", cfg.max_blocklist_share),
        ("max_quality_share", cfg.max_quality_share),
    ] {
        if let Some(v) = v {
            check_range(key, v, 0.0, 1.0)?;
        }
    }
    if let Some(v) = cfg.max_pii_per_1k_words {
        check_range("max_pii_per_1k_words", v, 0.0, 1000.0)?;
    }
    let needs = [
        (
            "max_pii_per_1k_words",
            cfg.max_pii_per_1k_words.is_some(),
            cfg.pii_stage.is_some(),
            "pii_stage",
        ),
        (
            "max_dirty_share",
            cfg.max_dirty_share.is_some(),
            !cfg.dirty_stages.is_empty(),
            "dirty_stages",
        ),
        (
            "max_blocklist_share",
            cfg.max_blocklist_share.is_some(),
            !cfg.blocklist_stages.is_empty(),
            "blocklist_stages",
        ),
        (
            "max_quality_share",
            cfg.max_quality_share.is_some(),
            !cfg.quality_stages.is_empty(),
            "quality_stages",
        ),
    ];
    for (key, set, source, source_key) in needs {
        if set && !source {
            return Err(ConfigError::new(
                key,
                format!("needs {source_key}: which stage measures it"),
            ));
        }
    }
    if needs.iter().all(|n| !n.1) {
        return Err(ConfigError::new(
            "max_pii_per_1k_words",
            "no threshold: set at least one of max_pii_per_1k_words, max_dirty_share, max_blocklist_share, max_quality_share",
        ));
    }
    let mut allow: FxHashSet<String> = cfg.allow.iter().map(|d| normalize_domain(d)).collect();
    for (i, p) in cfg.allow_lists.iter().enumerate() {
        let key = format!("allow_lists[{i}]");
        let path = args.resolve_path(&key, p)?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::new(&key, format!("{}: {e}", path.display())))?;
        allow.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(normalize_domain),
        );
    }
    let suffixes = if args.purpose == Purpose::Run {
        let (key, p) = match &cfg.public_suffix_list {
            Some(p) => (
                "public_suffix_list",
                args.resolve_path("public_suffix_list", p)?,
            ),
            None => ("public_suffix_list", Path::new(DEFAULT_LIST).to_path_buf()),
        };
        let l = SuffixList::load(&p, cfg.private_suffixes).map_err(|e| {
            ConfigError::new(
                key,
                format!(
                    "{}: {e} (install the publicsuffix package or set {key})",
                    p.display()
                ),
            )
        })?;
        Some(l)
    } else {
        None
    };
    let mut d = Declare::new(args.name);
    let domain = d.signal::<Str>("domain", "the offending registered domain of the page");
    let pages = d.signal::<I64>(
        "pages",
        "pages of the domain in the run (and in earlier runs of its history)",
    );
    let pii = d.signal::<F64>(
        "pii_per_1k_words",
        "PII matches per 1,000 words over the domain",
    );
    let dirty = d.signal::<F64>(
        "dirty_share",
        "share of the domain's pages failing the dirty-word stages",
    );
    let blocked = d.signal::<F64>(
        "blocklist_share",
        "share of the domain's pages failing the blocklist stages",
    );
    let quality = d.signal::<F64>(
        "quality_share",
        "share of the domain's pages failing the quality stages",
    );
    // Domains with fewer pages are never offending (nor pages without the signals).
    let min_pages = cfg.min_pages as f64;
    for ((sig, max, key), reason) in [
        (pii, cfg.max_pii_per_1k_words, "max_pii_per_1k_words"),
        (dirty, cfg.max_dirty_share, "max_dirty_share"),
        (blocked, cfg.max_blocklist_share, "max_blocklist_share"),
        (quality, cfg.max_quality_share, "max_quality_share"),
    ]
    .into_iter()
    .zip(REASONS)
    {
        d.max(sig, max, key, reason).only_if(pages, min_pages);
    }
    Ok(Built::Global(Box::new(Domains {
        inner: Arc::new(Inner {
            name: args.name.to_string(),
            shards: cfg.shards,
            top: cfg.top,
            pii_signal: cfg.pii_stage.map(|s| format!("{s}.total")),
            dirty: cfg.dirty_stages.into_iter().collect(),
            blocklist: cfg.blocklist_stages.into_iter().collect(),
            quality: cfg.quality_stages.into_iter().collect(),
            allow,
            suffixes,
            sig_domain: domain,
            sig_pages: pages,
            sig_pii: pii,
            sig_dirty: dirty,
            sig_blocked: blocked,
            sig_quality: quality,
            declared: d.finish(),
        }),
    })))
}

impl Inner {
    /// The site of a URL: its registered domain, else its host (IP addresses, bare suffixes);
    /// `None` without a usable host.
    fn site(&self, url: &str) -> Option<String> {
        let host = normalize_domain(url_host(url));
        if host.is_empty()
            || host
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'\t')
        {
            return None;
        }
        let is_ip = host.parse::<std::net::Ipv4Addr>().is_ok() || host.starts_with('[');
        let site = match (&self.suffixes, is_ip) {
            (Some(l), false) => l.registered_domain(&host).unwrap_or(&host),
            _ => &host,
        };
        Some(site.to_string())
    }

    fn allowed(&self, site: &str) -> bool {
        let mut d = site;
        loop {
            if self.allow.contains(d) {
                return true;
            }
            match d.find('.') {
                Some(i) => d = &d[i + 1..],
                None => return false,
            }
        }
    }

    /// What one page counts for.
    fn counts(&self, doc: &Document) -> Counts {
        let by = |set: &FxHashSet<String>| -> u64 {
            if set.is_empty() {
                return 0;
            }
            let dropped =
                matches!(&doc.verdict, Verdict::Dropped { stage, .. } if set.contains(&**stage));
            let flagged = doc.flags.iter().any(|(s, _)| set.contains(&**s));
            (dropped || flagged) as u64
        };
        let (words, pii) = match self.pii_signal.as_deref().and_then(|s| doc.signals.i64(s)) {
            Some(n) => (
                doc.words().iter().filter(|w| w.is_alnum()).count() as u64,
                n.max(0) as u64,
            ),
            None => (0, 0),
        };
        Counts {
            pages: 1,
            words,
            pii,
            dirty: by(&self.dirty),
            blocked: by(&self.blocklist),
            low_quality: by(&self.quality),
        }
    }

    fn shard(&self, site: &str) -> usize {
        let h = xxhash_rust::xxh3::xxh3_64(site.as_bytes());
        ((h as u128 * self.shards as u128) >> 64) as usize
    }

    fn write_signals(&self, s: &mut Signals, site: &str, f: &Figures) {
        self.sig_domain.set(s, site);
        self.sig_pages.set(s, f.pages as i64);
        self.sig_pii.set(s, f.pii_per_1k_words);
        self.sig_dirty.set(s, f.dirty_share);
        self.sig_blocked.set(s, f.blocklist_share);
        self.sig_quality.set(s, f.quality_share);
    }

    /// The verdict on a domain's figures, by the declared rules.
    fn judge(&self, f: &Figures) -> Outcome {
        let value = |i: usize| match i {
            _ if i == self.sig_pages.index() => f.pages as f64,
            _ if i == self.sig_pii.index() => f.pii_per_1k_words,
            _ if i == self.sig_dirty.index() => f.dirty_share,
            _ if i == self.sig_blocked.index() => f.blocklist_share,
            _ if i == self.sig_quality.index() => f.quality_share,
            _ => 0.0,
        };
        self.declared
            .judge_by(value)
            .map_or(Outcome::Keep, Outcome::Drop)
    }
}

fn parts_path(dir: &str, partition: usize) -> String {
    format!("{dir}/parts/{partition:06}.tsv")
}
fn index_path(dir: &str, partition: usize) -> String {
    format!("{dir}/parts/{partition:06}.idx")
}
fn offending_path(dir: &str, shard: usize) -> String {
    format!("{dir}/offending/{shard:05}.tsv")
}
fn summary_path(dir: &str, shard: usize) -> String {
    format!("{dir}/offending/{shard:05}.json")
}
/// The run-level summary the report and `curate inspect --domains` show.
pub const REPORT_FILE: &str = "removed_domains.json";

fn counts_line(out: &mut String, site: &str, c: &Counts) {
    let _ = writeln!(
        out,
        "{site}\t{}\t{}\t{}\t{}\t{}\t{}",
        c.pages, c.words, c.pii, c.dirty, c.blocked, c.low_quality
    );
}

/// Writes one counts line; returns its bytes.
fn write_counts(out: &mut dyn std::io::Write, site: &str, c: &Counts) -> std::io::Result<u64> {
    let mut s = String::new();
    counts_line(&mut s, site, c);
    out.write_all(s.as_bytes())?;
    Ok(s.len() as u64)
}

fn parse_counts(line: &str) -> Option<(&str, Counts)> {
    let mut f = line.split('\t');
    let site = f.next()?;
    let mut n = || f.next()?.parse::<u64>().ok();
    Some((
        site,
        Counts {
            pages: n()?,
            words: n()?,
            pii: n()?,
            dirty: n()?,
            blocked: n()?,
            low_quality: n()?,
        },
    ))
}

/// Sums the counts of one partition's pages per domain.
struct DomainCollector {
    inner: Arc<Inner>,
    ctx: PartitionCtx,
    sites: FxHashMap<String, Counts>,
    no_site: u64,
}

impl DomainCollector {
    fn add(&mut self, doc: &Document) {
        let Some(site) = self.inner.site(&doc.url) else {
            self.no_site += 1;
            return;
        };
        let c = self.inner.counts(doc);
        self.sites.entry(site).or_default().add(&c);
    }
}

impl Collector for DomainCollector {
    fn collect(&mut self, doc: &Document) -> Result<()> {
        self.add(doc);
        Ok(())
    }

    fn dropped(&mut self, doc: &Document) -> Result<()> {
        self.add(doc);
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<()> {
        // One file sorted by (shard, domain) and the byte offset where each shard starts.
        let mut rows: Vec<(usize, &String, &Counts)> = self
            .sites
            .iter()
            .map(|(s, c)| (self.inner.shard(s), s, c))
            .collect();
        rows.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let mut body = String::new();
        let mut offsets = vec![0u64; self.inner.shards + 1];
        let mut next = 0;
        for (sh, site, c) in rows {
            while next <= sh {
                offsets[next] = body.len() as u64;
                next += 1;
            }
            counts_line(&mut body, site, c);
        }
        for o in offsets.iter_mut().skip(next) {
            *o = body.len() as u64;
        }
        let (p, i) = (
            parts_path(&self.ctx.dir, self.ctx.partition),
            index_path(&self.ctx.dir, self.ctx.partition),
        );
        self.ctx
            .store
            .put(&p, body.as_bytes())
            .map_err(|e| Error::io(&p, e))?;
        let idx = serde_json::json!({ "offsets": offsets, "no_site": self.no_site });
        self.ctx
            .store
            .put(&i, idx.to_string().as_bytes())
            .map_err(|e| Error::io(&i, e))?;
        Ok(())
    }
}

/// One task per shard: the counts of its domains over every partition, judged.
struct AggregateStep {
    inner: Arc<Inner>,
}

impl AggregateStep {
    /// The history's counts of tonight's domains of shard `task` (summed over generations);
    /// `None` when the run has no history.
    fn earlier(
        &self,
        task: usize,
        ctx: &StepCtx,
        tonight: &FxHashMap<String, Counts>,
        st: &mut StepStats,
    ) -> Result<Option<FxHashMap<String, Counts>>> {
        let io = |e| Error::io(&ctx.dir, e);
        let Some(sources) =
            history::earlier_sources(&ctx.store, &self.inner.name, self.inner.shards, task)
                .map_err(io)?
        else {
            return Ok(None);
        };
        st.count("history_inputs", sources.len() as u64);
        let mut earlier: FxHashMap<String, Counts> = FxHashMap::default();
        let mut buf = String::new();
        for (path, mut r) in sources {
            while let Some((site, c)) =
                history::next_line(r.as_mut(), &path, &mut buf).map_err(io)?
            {
                if tonight.contains_key(&site) {
                    earlier.entry(site).or_default().add(&c);
                }
            }
        }
        st.count("history_domains_matched", earlier.len() as u64);
        Ok(Some(earlier))
    }

    /// Tonight's own counts of the shard (sorted by domain) for the new generation, and the
    /// domains whose earlier pages are retracted.
    fn write_history(
        &self,
        task: usize,
        ctx: &StepCtx,
        tonight: &FxHashMap<String, Counts>,
        retract: &mut [(&String, &'static str, u64)],
        st: &mut StepStats,
    ) -> Result<()> {
        let mut rows: Vec<(&String, &Counts)> = tonight.iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut body = String::new();
        for (site, c) in rows {
            counts_line(&mut body, site, c);
        }
        let p = history::out_counts_path(&ctx.dir, task);
        ctx.store
            .put(&p, body.as_bytes())
            .map_err(|e| Error::io(&p, e))?;
        retract.sort_unstable();
        let mut lines = String::new();
        for (site, reason, pages) in retract.iter() {
            let v = serde_json::json!({
                "domain": site,
                "stage": self.inner.name,
                "reason": reason,
                "earlier_pages": pages,
            });
            let _ = writeln!(lines, "{v}");
        }
        let p = crate::dedup::history::retractions_path(&ctx.dir, task);
        ctx.store
            .put(&p, lines.as_bytes())
            .map_err(|e| Error::io(&p, e))?;
        st.count("retracted_domains", retract.len() as u64);
        st.count(
            "retracted_earlier_pages",
            retract.iter().map(|r| r.2).sum::<u64>(),
        );
        Ok(())
    }
}

impl GlobalStep for AggregateStep {
    fn name(&self) -> &str {
        "aggregate"
    }

    fn tasks(&self, _ctx: &StepCtx) -> Result<usize> {
        Ok(self.inner.shards)
    }

    fn run(&self, task: usize, ctx: &StepCtx) -> Result<StepStats> {
        let mut st = StepStats::new("aggregate", task);
        let mut sites: FxHashMap<String, Counts> = FxHashMap::default();
        let mut line = String::new();
        for p in 0..ctx.partitions {
            let ip = index_path(&ctx.dir, p);
            let idx: serde_json::Value =
                serde_json::from_slice(&ctx.store.read(&ip).map_err(|e| Error::io(&ip, e))?)
                    .map_err(|e| Error::other(format!("{ip}: {e}")))?;
            let off = |k: usize| idx["offsets"][k].as_u64();
            let (Some(a), Some(b)) = (off(task), off(task + 1)) else {
                return Err(Error::other(format!("{ip}: no offsets for shard {task}")));
            };
            if task == 0 {
                st.count("pages_without_domain", idx["no_site"].as_u64().unwrap_or(0));
            }
            if b <= a {
                continue;
            }
            let pp = parts_path(&ctx.dir, p);
            let r = ctx
                .store
                .open_range(&pp, a, b - a)
                .map_err(|e| Error::io(&pp, e))?;
            let mut r = std::io::BufReader::new(r);
            loop {
                line.clear();
                if r.read_line(&mut line).map_err(|e| Error::io(&pp, e))? == 0 {
                    break;
                }
                let Some((site, c)) = parse_counts(line.trim_end_matches('\n')) else {
                    return Err(Error::other(format!("{pp}: bad line {line:?}")));
                };
                match sites.get_mut(site) {
                    Some(t) => t.add(&c),
                    None => {
                        sites.insert(site.to_string(), c);
                    }
                }
            }
        }
        let earlier = self.earlier(task, ctx, &sites, &mut st)?;
        let mut offending: Vec<(&String, Figures, &'static str)> = Vec::new();
        let mut retract: Vec<(&String, &'static str, u64)> = Vec::new();
        let mut pages = 0;
        for (site, c) in &sites {
            pages += c.pages;
            if self.inner.allowed(site) {
                continue;
            }
            let before = earlier.as_ref().and_then(|e| e.get(site));
            let mut all = *c;
            if let Some(b) = before {
                all.add(b);
            }
            let f = all.figures();
            if let Outcome::Drop(reason) = self.inner.judge(&f) {
                offending.push((site, f, reason));
                if let Some(b) = before {
                    if self.inner.judge(&b.figures()) == Outcome::Keep {
                        retract.push((site, reason, b.pages));
                    }
                }
            }
        }
        offending.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if earlier.is_some() {
            self.write_history(task, ctx, &sites, &mut retract, &mut st)?;
        }
        let mut out = String::new();
        let mut by_reason: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for (site, f, reason) in &offending {
            let e = by_reason.entry(reason).or_default();
            e.0 += 1;
            e.1 += f.pages;
            let _ = writeln!(
                out,
                "{site}\t{reason}\t{}\t{}\t{}\t{}\t{}",
                f.pages, f.pii_per_1k_words, f.dirty_share, f.blocklist_share, f.quality_share
            );
        }
        let op = offending_path(&ctx.dir, task);
        ctx.store
            .put(&op, out.as_bytes())
            .map_err(|e| Error::io(&op, e))?;
        let summary = serde_json::json!({
            "domains": sites.len(),
            "pages": pages,
            "by_reason": by_reason.iter().map(|(r, (d, p))| (r.to_string(), serde_json::json!({"domains": d, "pages": p}))).collect::<serde_json::Map<_, _>>(),
        });
        let sp = summary_path(&ctx.dir, task);
        ctx.store
            .put(&sp, summary.to_string().as_bytes())
            .map_err(|e| Error::io(&sp, e))?;
        st.count("domains", sites.len() as u64);
        st.count("pages", pages);
        st.count("offending_domains", offending.len() as u64);
        st.count(
            "offending_pages",
            offending.iter().map(|o| o.1.pages).sum::<u64>(),
        );
        st.peak_rss_bytes = crate::dedup::decisions::peak_rss_bytes();
        Ok(st)
    }
}

/// An offending domain as the aggregate step wrote it.
#[derive(Clone, Debug, PartialEq)]
pub struct Offending {
    pub domain: String,
    pub reason: String,
    pub figures: Figures,
}

fn parse_offending(line: &str) -> Option<Offending> {
    let mut f = line.split('\t');
    let domain = f.next()?.to_string();
    let reason = f.next()?.to_string();
    let pages = f.next()?.parse().ok()?;
    let mut x = || f.next()?.parse::<f64>().ok();
    Some(Offending {
        domain,
        reason,
        figures: Figures {
            pages,
            pii_per_1k_words: x()?,
            dirty_share: x()?,
            blocklist_share: x()?,
            quality_share: x()?,
        },
    })
}

/// Every offending domain of a run, from the aggregate step's files.
fn read_offending(store: &dyn crate::Store, dir: &str, shards: usize) -> Result<Vec<Offending>> {
    let mut all = Vec::new();
    for s in 0..shards {
        let p = offending_path(dir, s);
        let b = store.read(&p).map_err(|e| Error::io(&p, e))?;
        for line in String::from_utf8_lossy(&b).lines() {
            all.push(
                parse_offending(line)
                    .ok_or_else(|| Error::other(format!("{p}: bad line {line:?}")))?,
            );
        }
    }
    Ok(all)
}

/// One task: the run-level summary (`removed_domains.json`).
struct ReportStep {
    inner: Arc<Inner>,
}

impl GlobalStep for ReportStep {
    fn name(&self) -> &str {
        "report"
    }

    fn tasks(&self, _ctx: &StepCtx) -> Result<usize> {
        Ok(1)
    }

    fn run(&self, task: usize, ctx: &StepCtx) -> Result<StepStats> {
        let mut st = StepStats::new("report", task);
        let (mut domains, mut pages) = (0u64, 0u64);
        let mut by_reason: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for s in 0..self.inner.shards {
            let p = summary_path(&ctx.dir, s);
            let v: serde_json::Value =
                serde_json::from_slice(&ctx.store.read(&p).map_err(|e| Error::io(&p, e))?)
                    .map_err(|e| Error::other(format!("{p}: {e}")))?;
            domains += v["domains"].as_u64().unwrap_or(0);
            pages += v["pages"].as_u64().unwrap_or(0);
            if let Some(m) = v["by_reason"].as_object() {
                for (r, x) in m {
                    let e = by_reason.entry(r.clone()).or_default();
                    e.0 += x["domains"].as_u64().unwrap_or(0);
                    e.1 += x["pages"].as_u64().unwrap_or(0);
                }
            }
        }
        let mut off = read_offending(ctx.store.as_ref(), &ctx.dir, self.inner.shards)?;
        off.sort_by(|a, b| {
            b.figures
                .pages
                .cmp(&a.figures.pages)
                .then_with(|| a.domain.cmp(&b.domain))
        });
        let top: Vec<serde_json::Value> = off
            .iter()
            .take(self.inner.top)
            .map(|o| {
                serde_json::json!({
                    "domain": o.domain,
                    "reason": o.reason,
                    "pages": o.figures.pages,
                    "pii_per_1k_words": o.figures.pii_per_1k_words,
                    "dirty_share": o.figures.dirty_share,
                    "blocklist_share": o.figures.blocklist_share,
                    "quality_share": o.figures.quality_share,
                })
            })
            .collect();
        let v = serde_json::json!({
            "stage": self.inner.name,
            "domains": domains,
            "pages": pages,
            "offending_domains": off.len(),
            "offending_pages": off.iter().map(|o| o.figures.pages).sum::<u64>(),
            "by_reason": by_reason.iter().map(|(r, (d, p))| (r.clone(), serde_json::json!({"domains": d, "pages": p}))).collect::<serde_json::Map<_, _>>(),
            "top": top,
        });
        let p = format!("{}/{REPORT_FILE}", ctx.dir);
        ctx.store
            .put(
                &p,
                serde_json::to_string_pretty(&v)
                    .unwrap_or_default()
                    .as_bytes(),
            )
            .map_err(|e| Error::io(&p, e))?;
        st.count("offending_domains", off.len() as u64);
        Ok(st)
    }
}

/// Drops (or flags) the pages of offending domains.
struct DomainApplier {
    inner: Arc<Inner>,
    offending: FxHashMap<String, Figures>,
}

impl Applier for DomainApplier {
    fn apply(&mut self, doc: &mut Document) -> Outcome {
        if self.offending.is_empty() {
            return Outcome::Keep;
        }
        let Some(site) = self.inner.site(&doc.url) else {
            return Outcome::Keep;
        };
        match self.offending.get(&site) {
            Some(f) => {
                self.inner.write_signals(&mut doc.signals, &site, f);
                self.inner.judge(f)
            }
            None => Outcome::Keep,
        }
    }
}

impl GlobalStage for Domains {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.inner.declared)
    }

    fn collector(&self, ctx: &PartitionCtx) -> Result<Box<dyn Collector>> {
        Ok(Box::new(DomainCollector {
            inner: self.inner.clone(),
            ctx: ctx.clone(),
            sites: FxHashMap::default(),
            no_site: 0,
        }))
    }

    fn steps(&self) -> Vec<Box<dyn GlobalStep>> {
        vec![
            Box::new(AggregateStep {
                inner: self.inner.clone(),
            }),
            Box::new(ReportStep {
                inner: self.inner.clone(),
            }),
        ]
    }

    fn applier(&self, ctx: &PartitionCtx) -> Result<Box<dyn Applier>> {
        let offending = read_offending(ctx.store.as_ref(), &ctx.dir, self.inner.shards)?
            .into_iter()
            .map(|o| (o.domain, o.figures))
            .collect();
        Ok(Box::new(DomainApplier {
            inner: self.inner.clone(),
            offending,
        }))
    }
}

#[cfg(test)]
mod tests;
