//! The stage registry: one line per stage kind, from `type = "family.name"` to its builder.
//!
//! Adding a stage takes one file, one line here and its TOML section. Stages of the
//! `classifiers` crate register in that crate's own list; the engine looks in both.

pub use crate::stage::StageDef;

/// The stages of this crate.
pub static REGISTRY: &[&StageDef] = &[
    &crate::dedup::exact::DEF,
    &crate::dedup::lines::DEF,
    &crate::dedup::minhash::DEF,
    &crate::dedup::url::DEF,
    &crate::extract::DEF,
    &crate::clean::markdown::DEF,
    &crate::filter::length::DEF,
    &crate::filter::line_length::DEF,
    &crate::filter::gopher_repetition::DEF,
    &crate::filter::gopher_quality::DEF,
    &crate::filter::c4::DEF,
    &crate::filter::fineweb::DEF,
    &crate::filter::kl::DEF,
    &crate::safety::pii::DEF,
    &crate::safety::url_filter::DEF,
    &crate::safety::dirty_words::DEF,
    &crate::safety::domains::DEF,
    &crate::import::DEF,
    &crate::mix::bucket::DEF,
    &crate::mix::decontam::DEF,
    &crate::mix::topic_rules::DEF,
    &crate::tokenize::count::DEF,
];

/// Finds a stage kind by full kind (`extract.html`), by short name (`html`), or by family
/// (`extract`) when that family has a single kind.
pub fn find<'a>(defs: &[&'a [&'a StageDef]], kind: &str) -> Option<&'a StageDef> {
    let all = || defs.iter().flat_map(|d| d.iter()).copied();
    all()
        .find(|d| d.kind == kind || d.short_name() == kind)
        .or_else(|| {
            let mut family = all().filter(|d| d.kind.split('.').next() == Some(kind));
            match (family.next(), family.next()) {
                (Some(d), None) => Some(d),
                _ => None,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_by_kind_short_name_and_single_family() {
        let regs = [REGISTRY];
        assert_eq!(find(&regs, "filter.length").unwrap().kind, "filter.length");
        assert_eq!(find(&regs, "length").unwrap().kind, "filter.length");
        assert_eq!(find(&regs, "extract").unwrap().kind, "extract.html");
        // `dedup` names several kinds: ambiguous, so not found.
        assert!(find(&regs, "dedup").is_none());
        assert!(find(&regs, "nonsense").is_none());
    }

    #[test]
    fn every_example_builds_or_only_lacks_its_files() {
        for def in REGISTRY {
            let built =
                crate::kit::build_for(def, def.short_name(), def.example, crate::Purpose::Select);
            // Examples may name resource files (a KL reference, a model) that only exist where
            // the stage is used; every key must still parse and validate.
            if let Err(e) = built {
                assert!(
                    e.message.contains("file not found"),
                    "{}: example does not build: {e}",
                    def.kind
                );
            }
        }
    }

    /// The stage contract (see [`crate::kit::contract`]) for every kind of this registry,
    /// built from its own `example` section, on real pages of the extracted-WARC corpus (raw
    /// CleanEval HTML for the extractor). The examples' files are made or linked in a scratch
    /// folder: a KL reference counted from the pages, `ldnoobw` from `../shared`. Pages get
    /// what a kind reads from earlier stages or the input: `safety.domains` runs after the
    /// `pii`, `dirty` and `urls` stages its example names; `signal.import` reads record fields.
    #[test]
    fn every_registered_stage_keeps_the_contract() {
        use crate::kit;
        let (Some(pages), Some(html), Some(shared)) = (
            kit::pages(200),
            kit::html_pages(40),
            crate::tokenize::testdata::shared(),
        ) else {
            return;
        };
        // `base/` sees `../shared` as the examples expect (the decontamination benchmarks).
        let tmp = tempfile::tempdir().unwrap();
        let dir = &tmp.path().join("base");
        std::fs::create_dir(dir).unwrap();
        std::os::unix::fs::symlink(&shared, tmp.path().join("shared")).unwrap();
        let mut r = crate::filter::kl::KlReference::new(16, 0.5);
        pages.iter().for_each(|d| r.add(d));
        r.write(std::fs::File::create(dir.join("kl-ref.bin")).unwrap())
            .unwrap();
        std::os::unix::fs::symlink(shared.join("data/nsfw/ldnoobw"), dir.join("ldnoobw")).unwrap();
        // Site-level figures need sites with several pages: the pages are spread over 20
        // sites, one of them on the example's URL blocklist (so that it is offending).
        let mut screened = pages.clone();
        for (i, d) in screened.iter_mut().enumerate() {
            d.url = match i % 20 {
                0 => format!("https://bad.example/page{i}"),
                s => format!("https://site{s}.example/page{i}"),
            };
        }
        for (def, name) in [
            (&crate::safety::pii::DEF, "pii"),
            (&crate::safety::dirty_words::DEF, "dirty"),
            (&crate::safety::url_filter::DEF, "urls"),
        ] {
            let built = kit::build_in(def, name, def.example, crate::Purpose::Run, dir);
            let Ok(crate::Built::Map(s)) = built else {
                panic!("{} does not build", def.kind)
            };
            // In tag mode, as the runner does: a page keeps going with the stage's flag.
            for d in &mut screened {
                let o = match s.process(d) {
                    crate::Outcome::Keep => s.judge(&d.signals),
                    o => o,
                };
                if let crate::Outcome::Drop(r) = o {
                    d.flags.push((name.into(), r.into()));
                }
            }
        }
        let mut records = pages.clone();
        for d in &mut records {
            // Fields a record of a scored corpus carries, taken from the page itself.
            let n = d.text().chars().count().max(1) as f64;
            let share = |f: fn(char) -> bool| d.text().chars().filter(|&c| f(c)).count() as f64 / n;
            let code = share(|c| matches!(c, '{' | '}' | ';'));
            let math = share(|c| c.is_ascii_digit());
            d.metadata.insert("code".into(), code.to_string());
            d.metadata.insert("math_score".into(), math.to_string());
            d.metadata.insert("lang".into(), "en".into());
        }
        let mut failed = Vec::new();
        for def in REGISTRY {
            let input = match def.kind {
                "extract.html" => &html,
                "safety.domains" => &screened,
                "signal.import" => &records,
                _ => &pages,
            };
            assert!(!input.is_empty(), "{}: no pages", def.kind);
            match kit::contract(def, def.example, input, dir) {
                Ok(c) => eprintln!("{}: {} kept, dropped {:?}", def.kind, c.kept, c.dropped),
                Err(e) => failed.push(e),
            }
        }
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }
}
