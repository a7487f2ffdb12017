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
    assert!(zh.get("short_line_length").unwrap() < 20.0);
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

/// Gopher quality, FineWeb and C4, per language as `pipelines/llama3.toml` runs them (C4
/// last: it edits the text).
fn judges(per_language: bool) -> Vec<Box<dyn crate::Stage>> {
    let on = format!("per_language = {per_language}");
    vec![
        crate::kit::stage(&crate::filter::gopher_quality::DEF, "gq", &on).unwrap(),
        crate::kit::stage(&crate::filter::fineweb::DEF, "fw", &on).unwrap(),
        crate::kit::stage(&crate::filter::c4::DEF, "c4", &on).unwrap(),
    ]
}

/// The drop reasons of the two stages for `text` of language `lang` (empty: kept), and the
/// `rules` signal.
fn verdict(stages: &[Box<dyn crate::Stage>], lang: &str, text: &str) -> (Vec<String>, String) {
    let mut d = Document::new("t", text);
    d.signals.set_str(crate::LANG_SIGNAL, lang);
    let mut out = Vec::new();
    for s in stages {
        s.process(&mut d);
        if let crate::Outcome::Drop(r) = s.judge(&d.signals) {
            out.push(format!("{}:{r}", s.name()));
        }
    }
    (out, d.signals.str("gq.rules").unwrap_or("").to_string())
}

/// A page of the extracted-WARC corpus by its URL.
fn page(records: &[serde_json::Value], url: &str) -> String {
    records
        .iter()
        .find(|r| r["url"].as_str() == Some(url))
        .and_then(|r| r["text"].as_str())
        .unwrap_or_else(|| panic!("{url} is not in the corpus"))
        .to_string()
}

/// Spammy pages made from a clean one: its first line repeated, its words as a keyword list
/// (no stop words, one per line), and menu boilerplate.
fn spam_from(clean: &str, stops: &[String]) -> Vec<(&'static str, String)> {
    let first = clean.lines().find(|l| l.chars().count() > 20).unwrap();
    let repeated = vec![first; 40].join("\n");
    let d = Document::new("k", clean);
    let keywords: Vec<&str> = d
        .words()
        .iter()
        .filter(|w| w.is_alpha() && !stops.iter().any(|s| s == w.as_str(clean)))
        .map(|w| w.as_str(clean))
        .take(300)
        .collect();
    let list = keywords.join("\n");
    let menu = keywords
        .chunks(2)
        .map(|c| c.join(" "))
        .collect::<Vec<_>>()
        .join("\n");
    vec![
        ("repeated", repeated),
        ("keyword list", list),
        ("menu", menu),
    ]
}

/// Real German, Chinese and Japanese pages pass their languages' rules; spammy pages made
/// from them, and real spam pages, are tagged; a language without a row is judged neutral.
#[test]
fn clean_pages_pass_and_spam_is_tagged_per_language() {
    let Some(records) = crate::tokenize::testdata::corpus_records() else {
        return;
    };
    let per_lang = judges(true);
    let english = judges(false);
    let t = LangTable::builtin();
    let clean = [
        (
            "de",
            "https://www.spiegel.de/spiegel/print/d-161500790.html",
        ),
        (
            "de",
            "https://www.sueddeutsche.de/wirtschaft/bahn-flixbus-flixtrain-deutschl",
        ),
        (
            "zh",
            "http://www.banyuetan.org/jmcs/detail/20200102/1000200033136171577956287380194268",
        ),
        (
            "zh",
            "http://www.xinhuanet.com/local/2020-02/19/c_1125597921.htm",
        ),
        (
            "ja",
            "https://www3.nhk.or.jp/news/easy/k10011959621000/k10011959621000.html",
        ),
    ];
    for (lang, url) in clean {
        let url_full = records
            .iter()
            .filter_map(|r| r["url"].as_str())
            .find(|u| u.starts_with(url))
            .unwrap_or_else(|| panic!("{url} is not in the corpus"));
        let text = page(&records, url_full);
        let (reasons, rules) = verdict(&per_lang, lang, &text);
        assert_eq!(rules, lang);
        assert!(reasons.is_empty(), "{lang} {url}: {reasons:?}");
        for (kind, spam) in spam_from(&text, &t.row(lang).unwrap().stop_words) {
            let (reasons, _) = verdict(&per_lang, lang, &spam);
            assert!(!reasons.is_empty(), "{lang} {url}: {kind} kept");
        }
        if lang != "de" {
            // English numbers would have dropped the clean page.
            assert!(!verdict(&english, lang, &text).0.is_empty(), "{url}");
        }
    }
    // A language without reference text (Wolof, which lid.176 labels): `rules = "neutral"`,
    // and the per-language rules are not applied (English numbers drop this short page for
    // too few words); the language-neutral ones still are (C4's sentence count, repeated
    // lines).
    let short = "Dakar mooy gëblag réewum Senegaal. Am na lu ëpp ñetti milioŋ ay nit.";
    let (reasons, rules) = verdict(&per_lang, "wo", short);
    assert_eq!(rules, NEUTRAL);
    assert_eq!(reasons, ["c4:too_few_sentences"]);
    let (reasons, _) = verdict(&english, "wo", short);
    assert!(
        reasons.contains(&"gq:too_few_words".to_string()),
        "{reasons:?}"
    );
    let (reasons, _) = verdict(&per_lang, "wo", &vec![short; 20].join("\n"));
    assert_eq!(reasons, ["fw:char_dup_ratio"]);
    // Real Chinese spam of the crawl: lottery tips and a link farm.
    for url in [
        "http://044545.com/topic/20200207/015849.html",
        "http://041696.com/15477/list_6_4.html",
    ] {
        let (reasons, _) = verdict(&per_lang, "zh", &page(&records, url));
        assert!(!reasons.is_empty(), "{url} kept");
    }
}

/// English pages are judged exactly as without `per_language`: same signals, same verdicts.
#[test]
fn english_is_unchanged() {
    let Some(texts) = crate::tokenize::testdata::corpus_texts(300) else {
        return;
    };
    let (on, off) = (judges(true), judges(false));
    for t in &texts {
        let mut a = Document::new("a", t.as_str());
        let mut b = Document::new("b", t.as_str());
        a.signals.set_str(crate::LANG_SIGNAL, "en");
        b.signals.set_str(crate::LANG_SIGNAL, "en");
        for (x, y) in on.iter().zip(&off) {
            x.process(&mut a);
            y.process(&mut b);
            assert_eq!(x.judge(&a.signals), y.judge(&b.signals));
        }
        for s in ["gq.rules", "fw.rules", "c4.rules"] {
            assert_eq!(a.signals.str(s), Some("en"));
            a.signals.remove(s);
        }
        assert_eq!(a.signals, b.signals);
        assert_eq!(a.text(), b.text());
    }
}

/// `pipelines/llama3.toml` judges every language by its row: its Gopher quality, C4 and
/// FineWeb sections set `per_language`, are not scoped to English, and build.
#[test]
fn llama3_applies_rules_per_language() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/llama3.toml");
    let pipeline: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    for (name, def) in [
        ("gopher_quality", &crate::filter::gopher_quality::DEF),
        ("c4", &crate::filter::c4::DEF),
        ("fineweb", &crate::filter::fineweb::DEF),
    ] {
        let mut section = pipeline["stages"][name].as_table().unwrap().clone();
        assert_eq!(section["type"].as_str(), Some(def.kind));
        assert_eq!(
            section.get("per_language"),
            Some(&toml::Value::Boolean(true))
        );
        assert!(!section.contains_key("only_languages"), "{name}");
        // The engine's keys are not the stage's.
        section.remove("type");
        section.remove("mode");
        let s = crate::kit::stage(def, name, &section.to_string()).unwrap();
        let mut d = Document::new("d", "短い。");
        d.signals.set_str(crate::LANG_SIGNAL, "ja");
        s.process(&mut d);
        assert_eq!(d.signals.str(&format!("{name}.rules")), Some("ja"));
    }
    // KL too: per language, against the references that scripts/train_models.sh builds.
    let kl = pipeline["stages"]["kl"].as_table().unwrap();
    assert_eq!(kl.get("per_language"), Some(&toml::Value::Boolean(true)));
    assert!(kl.contains_key("lang_references") && !kl.contains_key("only_languages"));
}

/// `lang.<code>.<key>` overrides move one language's rule (an ablation without regenerating
/// the table), add rules for a language without a row, and name their key when wrong.
#[test]
fn overrides_move_one_language_and_name_their_key() {
    let Some(records) = crate::tokenize::testdata::corpus_records() else {
        return;
    };
    let url = records
        .iter()
        .filter_map(|r| r["url"].as_str())
        .find(|u| u.starts_with("https://www.spiegel.de/spiegel/print/d-161500790.html"))
        .expect("the Spiegel page is in the corpus");
    let german = page(&records, url);
    let gq = |body: &str| crate::kit::stage(&crate::filter::gopher_quality::DEF, "gq", body);
    let base = gq("per_language = true").unwrap();
    let strict = gq("per_language = true\n[lang.de]\nmin_stop_words = 9").unwrap();
    assert_eq!(verdict(&[base], "de", &german).0, Vec::<String>::new());
    // The table lists 8 German stop words: 9 can never be met, and only German moves.
    let (reasons, rules) = verdict(std::slice::from_ref(&strict), "de", &german);
    assert_eq!(
        (reasons, rules.as_str()),
        (vec!["gq:too_few_stop_words".to_string()], "de")
    );
    let spanish = "El museo abre sus puertas todos los días de la semana y la entrada es gratuita para los vecinos de la ciudad que lo visiten por la mañana. ".repeat(6);
    assert!(verdict(std::slice::from_ref(&strict), "es", &spanish)
        .0
        .is_empty());

    // Wolof has no row: an override gives it one holding only the rule it names.
    let wolof = "Dakar mooy gëblag réewum Senegaal. Am na lu ëpp ñetti milioŋ ay nit.";
    let wo = gq("per_language = true\n[lang.wo]\nmin_doc_words = 50").unwrap();
    let (reasons, rules) = verdict(&[wo], "wo", wolof);
    assert_eq!(
        (reasons, rules.as_str()),
        (vec!["gq:too_few_words".to_string()], "wo")
    );

    for (body, key) in [
        (
            "per_language = true\n[lang.de]\nmin_stopwords = 1",
            "lang.de.min_stopwords",
        ),
        (
            "per_language = true\n[lang.de]\nmin_stop_words = -1",
            "lang.de.min_stop_words",
        ),
        (
            "per_language = true\n[lang.\"d e\"]\nmin_stop_words = 1",
            "lang.d e.min_stop_words",
        ),
        ("[lang.de]\nmin_stop_words = 1", "lang"),
    ] {
        let e = gq(body).err().unwrap_or_else(|| panic!("{body} built"));
        assert_eq!(e.key, key, "{body}: {}", e.message);
    }
    // FineWeb and C4 take the same section.
    for def in [&crate::filter::fineweb::DEF, &crate::filter::c4::DEF] {
        let e = crate::kit::stage(def, "s", "per_language = true\n[lang.de]\nnope = 1")
            .err()
            .unwrap();
        assert_eq!(e.key, "lang.de.nope");
    }
}
