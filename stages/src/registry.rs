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
            let table: toml::Table = def
                .example
                .parse()
                .unwrap_or_else(|e| panic!("{}: example is not TOML: {e}", def.kind));
            let args = crate::StageArgs {
                name: def.short_name(),
                table: &table,
                base_dir: std::path::Path::new("."),
                purpose: crate::Purpose::Select,
                seed: 0,
            };
            // Examples may name resource files (a KL reference, a model) that only exist where
            // the stage is used; every key must still parse and validate.
            if let Err(e) = (def.build)(&args) {
                assert!(
                    e.message.contains("file not found"),
                    "{}: example does not build: {e}",
                    def.kind
                );
            }
        }
    }
}
