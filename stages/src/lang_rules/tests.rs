use super::*;

/// The most common languages of Common Crawl that the issue names: each has a row.
const TOP_LANGUAGES: &[&str] = &[
    "ru", "de", "zh", "ja", "es", "fr", "it", "pt", "pl", "nl", "vi", "tr", "id", "cs", "fa", "ko",
    "sv", "hu", "el", "uk", "ro", "ar",
];

#[test]
fn the_committed_table_parses_and_covers_the_common_languages() {
    let t = LangTable::builtin();
    for l in TOP_LANGUAGES {
        let r = t.row(l).unwrap_or_else(|| panic!("no row for {l}"));
        assert_eq!(r.values.len(), KEYS.len());
        assert_eq!(r.stop_words.len(), STOP_WORDS, "{l}");
        assert!(r.docs >= MIN_DOCS, "{l}");
    }
    // The printed form is the committed file, byte for byte.
    assert_eq!(t.to_tsv(), TABLE_TSV);
    // Words are shorter in Chinese and longer in German than in English, so are the bounds.
    let zh = t.row("zh").unwrap();
    let de = t.row("de").unwrap();
    assert!(zh.get("max_avg_word_length").unwrap() < 6.0);
    assert!(de.get("min_avg_word_length").unwrap() > 3.0);
    assert!(zh.get("min_doc_words").unwrap() > 50.0);
    assert!(zh.stop_words.iter().any(|w| w == "的"));
    assert!(de.stop_words.iter().any(|w| w == "und"));
}

#[test]
fn scope_follows_the_lang_signal() {
    let t = LangTable::builtin();
    assert_eq!(t.scope(None).label(), DEFAULT);
    assert_eq!(t.scope(Some("en")).label(), "en");
    assert_eq!(t.scope(Some("de")).label(), "de");
    assert_eq!(t.scope(Some("zh-Hant")).label(), "zh");
    // lid.176 knows Wolof; the reference has no Wolof: neutral, not English numbers.
    assert_eq!(t.scope(Some("wo")).label(), NEUTRAL);
    assert!(matches!(t.scope(Some("wo")), Scope::Neutral));
}

#[test]
fn bad_tables_are_errors() {
    assert!(LangTable::parse("lang\tdocs\n").is_err());
    let short = format!("{}\nde\t10\t1\n", header());
    assert!(LangTable::parse(&short).unwrap_err().contains("line 2"));
}

#[test]
fn quantiles_interpolate() {
    assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.5), 3.0);
    assert!((quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.05) - 1.2).abs() < 1e-12);
    assert_eq!(quantile(&[], 0.5), 0.0);
}

/// The committed table is what the derivation gives on the shared reference.
#[test]
fn the_table_regenerates_from_the_shared_reference() {
    let Some(shared) = crate::tokenize::testdata::shared() else {
        return;
    };
    let (reference, english) = match load_reference(&shared) {
        Ok(r) => r,
        Err(e) => {
            testkit::skip(format!("the classifier reference data: {e}"));
            return;
        }
    };
    assert_eq!(derive(&reference, &english).to_tsv(), TABLE_TSV);
}
