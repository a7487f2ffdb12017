//! Tests of the extraction stage on pages written for them: code, math, boilerplate, tables,
//! limits, and a property test over random and mutated HTML.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

fn extractor(toml: &str) -> Extractor {
    let t: toml::Table = toml.parse().unwrap();
    Extractor::new(crate::config::parse_table(&t).unwrap()).unwrap()
}

fn text(html: &str) -> String {
    extractor("").extract(html).unwrap().extraction.text
}

fn stage(toml: &str) -> Box<dyn Stage> {
    crate::kit::stage(&DEF, "extract", toml).expect("builds")
}

/// A blog page with every kind of boilerplate around an article.
const BLOG: &str = r#"<!DOCTYPE html>
<html><head><title>Parsing HTML by hand | Example Blog</title>
<style>body { color: red }</style><script>var tracking = "do not keep me";</script></head>
<body class="single-post has-sidebar">
<div id="cookie-banner" class="consent"><p>We use cookies to improve your experience. Accept all cookies?</p><button>OK</button></div>
<header class="site-header"><a href="/">Example Blog</a>
  <nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li><li><a href="/archive">Archive</a></li></ul></nav>
</header>
<div class="layout">
<main>
<article>
<h1>Parsing HTML by hand</h1>
<p class="byline">Posted on March 3 by Ada</p>
<p>Writing a tokenizer for <b>HTML</b> is less work than it sounds, because the standard spells out
every state of the machine, and most pages only ever visit a handful of them.</p>
<h2>The main loop</h2>
<p>The loop looks for the next angle bracket and decides what kind of token starts there:</p>
<pre><code>fn main() {
    for token in tokens {
        if token.is_tag() {
            handle(token);
        }
    }
}</code></pre>
<p>After that come the attributes, which are quoted, unquoted or missing altogether.</p>
<ul><li>quoted values may hold any character but the quote</li><li>unquoted values end at white space</li></ul>
<table><tr><th>State</th><th>Next</th></tr><tr><td>data</td><td>tag open</td></tr><tr><td>tag open</td><td>tag name</td></tr></table>
<div class="share-buttons"><a href="https://twitter.example/share">Share on Twitter</a> <a href="https://facebook.example/share">Share on Facebook</a></div>
</article>
<section id="comments" class="comments-area"><h3>3 comments</h3>
<div class="comment"><p>Great post, thank you so much for writing this down in such detail, it helped me a lot!</p></div>
</section>
</main>
<aside class="sidebar"><h3>Popular posts</h3><ul><li><a href="/a">Ten tips for parsers</a></li><li><a href="/b">Why I love state machines</a></li></ul></aside>
</div>
<footer class="site-footer"><p>Copyright 2024 Example Blog. All rights reserved.</p></footer>
</body></html>"#;

#[test]
fn keeps_the_article_and_drops_boilerplate() {
    let t = text(BLOG);
    for want in [
        "Parsing HTML by hand",
        "Writing a tokenizer for HTML is less work than it sounds",
        "The main loop",
        "After that come the attributes",
        "quoted values may hold any character but the quote",
        "unquoted values end at white space",
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    for unwanted in [
        "cookies",
        "About us",
        "Share on Twitter",
        "Great post",
        "Popular posts",
        "Ten tips",
        "Copyright",
        "tracking",
        "color: red",
        "Example Blog",
    ] {
        assert!(!t.contains(unwanted), "kept {unwanted:?} in:\n{t}");
    }
    // Headings, paragraphs and list items are lines of their own.
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines.contains(&"The main loop"), "{lines:?}");
    assert!(
        lines.contains(&"unquoted values end at white space"),
        "{lines:?}"
    );
}

#[test]
fn keeps_code_blocks_verbatim() {
    let t = text(BLOG);
    let code = "fn main() {\n    for token in tokens {\n        if token.is_tag() {\n            handle(token);\n        }\n    }\n}";
    assert!(t.contains(code), "code block lost its layout:\n{t}");
    // The code is a block of its own: the line before it is the paragraph.
    assert!(
        t.contains("kind of token starts there:\nfn main() {"),
        "{t}"
    );
    let r = extractor("").extract(BLOG).unwrap();
    assert_eq!(r.extraction.code_blocks, 1);
}

#[test]
fn tables_are_rows_of_cells() {
    let t = text(BLOG);
    assert!(
        t.contains("State\tNext\ndata\ttag open\ntag open\ttag name"),
        "{t}"
    );
}

#[test]
fn comments_can_be_kept() {
    let t = extractor("keep = [\"comments\"]")
        .extract(BLOG)
        .unwrap()
        .extraction
        .text;
    assert!(t.contains("Great post"), "{t}");
    assert!(!t.contains("Share on Twitter"), "{t}");
}

#[test]
fn markdown_markers_are_an_option() {
    let plain = text(BLOG);
    assert!(!plain.contains("## "), "{plain}");
    assert!(!plain.contains("**"), "{plain}");
    assert!(!plain.contains("```"), "{plain}");
    let md = extractor("markdown = true")
        .extract(BLOG)
        .unwrap()
        .extraction
        .text;
    assert!(md.contains("## The main loop"), "{md}");
    assert!(md.contains("**HTML**"), "{md}");
    assert!(md.contains("```\nfn main() {"), "{md}");
    assert!(md.contains("- quoted values"), "{md}");
}

/// A page with math in every form the web writes it.
const MATH: &str = r#"<html><head><title>Euler</title></head><body><div id="content">
<p>Euler's identity, written in MathJax, is <script type="math/tex">e^{i\pi} + 1 = 0</script>, and it
is often called the most beautiful equation of mathematics.</p>
<span class="MathJax_Preview">e^{iπ}+1=0</span>
<p>Its display form follows, together with a longer explanation of why it holds for every reader.</p>
<script type="math/tex; mode=display">\sum_{n=0}^\infty \frac{x^n}{n!} = e^x</script>
<p>KaTeX renders <span class="katex"><span class="katex-mathml"><math><semantics><mrow><mi>a</mi><mo>+</mo><mi>b</mi></mrow><annotation encoding="application/x-tex">a+b</annotation></semantics></math></span><span class="katex-html" aria-hidden="true"><span>a</span><span>+</span><span>b</span></span></span> inline, while MathML with an alttext looks like
<math alttext="\sqrt{2}" display="block"><msqrt><mn>2</mn></msqrt></math> in display mode.</p>
<p>Old pages show formulas as images: <img class="latex" src="https://s0.example.com/latex.php?latex=x%5E2" alt="x^2"> and
<img src="/photo.jpg" alt="a photo of a cat"> is just a picture with a caption that we do not keep.</p>
</div></body></html>"#;

#[test]
fn keeps_math_as_tex() {
    let r = extractor("").extract(MATH).unwrap();
    let t = r.extraction.text;
    assert!(t.contains(r"is $e^{i\pi} + 1 = 0$, and it"), "{t}");
    assert!(
        t.contains("\n$$\\sum_{n=0}^\\infty \\frac{x^n}{n!} = e^x$$\n"),
        "{t}"
    );
    assert!(t.contains("KaTeX renders $a+b$ inline"), "{t}");
    assert!(t.contains("$$\\sqrt{2}$$"), "{t}");
    assert!(t.contains("images: $x^2$ and"), "{t}");
    assert!(!t.contains("e^{iπ}"), "MathJax preview kept: {t}");
    assert!(!t.contains("a photo of a cat"), "{t}");
    assert_eq!(r.extraction.math, 5);
    assert_eq!(r.extraction.title, "Euler");
}

#[test]
fn stage_sets_text_signals_and_title() {
    let s = stage("");
    let mut d = Document::new("d", "");
    d.html = Some(BLOG.to_string());
    assert_eq!(s.process(&mut d), Outcome::Keep);
    assert!(d.html.is_none());
    assert!(
        d.text().starts_with("Parsing HTML by hand\n"),
        "{}",
        d.text()
    );
    assert_eq!(
        d.metadata.get("title").map(String::as_str),
        Some("Parsing HTML by hand | Example Blog")
    );
    assert_eq!(d.signals.i64("extract.code_blocks"), Some(1));
    assert_eq!(
        d.signals.i64("extract.chars"),
        Some(d.text().chars().count() as i64)
    );
    let ld = d.signals.f64("extract.link_density").unwrap();
    assert!((0.0..0.2).contains(&ld), "{ld}");
    let frac = d.signals.f64("extract.content_frac").unwrap();
    assert!(frac > 0.3 && frac < 1.0, "{frac}");
    for spec in s.signals() {
        assert!(d.signals.get(&spec.name).is_some(), "{} not set", spec.name);
    }
    // Text documents pass through untouched.
    let mut t = Document::new("t", "plain text");
    assert_eq!(s.process(&mut t), Outcome::Keep);
    assert_eq!(t.text(), "plain text");
    assert!(t.signals.is_empty());
    // A page with nothing to say is dropped as empty.
    let mut e = Document::new("e", "");
    e.html =
        Some("<html><body><nav><a href=/>Home</a></nav><script>x()</script></body></html>".into());
    assert_eq!(s.process(&mut e), Outcome::Drop("empty"));
}

#[test]
fn bad_config_names_the_key() {
    use crate::kit;
    assert_eq!(kit::build_err(&DEF, "keep = [\"sidebars\"]").key, "keep");
    assert_eq!(kit::build_err(&DEF, "max_dept = 3").key, "max_dept");
    assert!(kit::build(&DEF, "extract", DEF.example).is_ok());
}

#[test]
fn ten_thousand_deep_nesting_is_dropped_quickly() {
    let page = format!(
        "<html><body>{}<p>deep text</p>{}</body></html>",
        "<div>".repeat(10_000),
        "</div>".repeat(10_000)
    );
    let t = Instant::now();
    assert_eq!(extractor("").extract(&page).err(), Some(Failure::TooDeep));
    // With the limit raised the page is extracted, still without recursion.
    let r = extractor("max_depth = 20000").extract(&page).unwrap();
    assert_eq!(r.extraction.text, "deep text");
    assert!(r.depth >= 10_000);
    // Unclosed inline elements nest too.
    let page = "<b><i>".repeat(6000) + "x";
    assert_eq!(extractor("").extract(&page).err(), Some(Failure::TooDeep));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[test]
fn ten_megabyte_page_is_bounded() {
    let para = "<p>Paragraph text with <a href=\"/x\">a link</a> and &amp; some entities &eacute; inside it.</p>\n";
    let mut page = String::from("<html><body><div class=\"content\">");
    while page.len() < 10 << 20 {
        page.push_str(para);
    }
    page.push_str("</div></body></html>");
    let t = Instant::now();
    let r = extractor("").extract(&page).unwrap();
    assert!(r.extraction.text.len() > 5 << 20);
    assert!(r
        .extraction
        .text
        .starts_with("Paragraph text with a link and & some entities é inside it.\n"));
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert_eq!(
        extractor("max_html_bytes = 1000000").extract(&page).err(),
        Some(Failure::TooLarge)
    );
    assert_eq!(
        extractor("max_nodes = 1000").extract(&page).err(),
        Some(Failure::TooManyNodes)
    );
    assert_eq!(
        extractor("timeout_ms = 1").extract(&page).err(),
        Some(Failure::Timeout)
    );
}

#[test]
fn stage_counts_drops_by_reason() {
    let s = stage("max_html_bytes = 100");
    let mut d = Document::new("d", "");
    d.html = Some(BLOG.to_string());
    assert_eq!(s.process(&mut d), Outcome::Drop("too_large"));
    assert!(d.html.is_none());
    assert!(s.reasons().contains(&"too_large"));
}

/// Fragments that random pages are built from: tags of every kind, broken ones included.
const PIECES: &[&str] = &[
    "<div>",
    "</div>",
    "<p>",
    "</p>",
    "<li>",
    "<ul>",
    "</ul>",
    "<table>",
    "<tr>",
    "<td>",
    "</table>",
    "<pre>",
    "</pre>",
    "<script>",
    "</script>",
    "<style>",
    "<!--",
    "-->",
    "<b>",
    "</b>",
    "<a href=x>",
    "</a>",
    "<math>",
    "<annotation encoding=\"application/x-tex\">",
    "</math>",
    "<svg>",
    "</svg>",
    "<title>",
    "&amp;",
    "&#x1F600;",
    "&",
    "<",
    ">",
    "text ",
    "\u{e9}t\u{e9} ",
    "<br>",
    "<nav>",
    "<h1>",
    "</h1>",
    "<![CDATA[",
    "]]>",
    "<img alt=x>",
    "<div class=\"comment\">",
    "<select><option>",
    "<textarea>",
    "</",
    "<!DOCTYPE html>",
    "<plaintext>",
    "\"",
    "'",
    "=",
    " ",
    "\n",
    "\t",
    "<p style=\"display:none\">",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_markup_never_panics(parts in proptest::collection::vec(0..PIECES.len(), 0..200)) {
        let html: String = parts.iter().map(|&i| PIECES[i]).collect();
        let t = Instant::now();
        // With the restore on: the default path and the restore's walk and features.
        let _ = extractor("restore = true").extract(&html);
        prop_assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn mutated_pages_never_panic(cuts in proptest::collection::vec((0usize..BLOG.len(), 0usize..64, 0..PIECES.len()), 1..20)) {
        // Splice random fragments into (and cut random spans out of) a real page.
        let mut html = BLOG.to_string();
        for (at, len, piece) in cuts {
            let mut at = at.min(html.len());
            while !html.is_char_boundary(at) { at -= 1; }
            let mut end = (at + len).min(html.len());
            while !html.is_char_boundary(end) { end -= 1; }
            html.replace_range(at..end, PIECES[piece]);
        }
        let t = Instant::now();
        let _ = extractor("restore = true").extract(&html);
        prop_assert!(t.elapsed() < Duration::from_secs(2));
        // Training's view (every line placed, the restore's candidates with features).
        let _ = extractor("").collecting_lines().extract(&html);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,400}") {
        let _ = extractor("").extract(&s);
    }
}

#[test]
fn noscript_content_is_read_when_the_scripted_page_is_empty() {
    let js_page = r#"<html><body><div id="app"></div><script>render()</script>
<noscript><div class="post"><p>This article is rendered by JavaScript, and the server also sends it inside a noscript element for readers without it.</p></div></noscript></body></html>"#;
    let t = text(js_page);
    assert!(
        t.starts_with("This article is rendered by JavaScript"),
        "{t:?}"
    );
    // A page with content of its own ignores its <noscript> notices.
    let page = BLOG.replace(
        "<main>",
        "<main><noscript><p>Please enable JavaScript to see the comments and the share buttons of this page.</p></noscript>",
    );
    let t = text(&page);
    assert!(!t.contains("Please enable JavaScript"), "{t}");
    assert!(t.contains("Writing a tokenizer"), "{t}");
}

/// A paragraph of running text, long enough to count as prose.
fn prose(topic: &str) -> String {
    format!(
        "<p>{topic} is described here in a sentence that runs long enough to read as prose, with \
         a second clause that adds detail, and a third one that closes the thought.</p>"
    )
}

fn article(inner: &str) -> String {
    format!(
        "<html><body><nav><a href=/>Home</a> <a href=/a>About</a></nav><article>{inner}</article>\
         <footer class=site-footer>Imprint</footer></body></html>"
    )
}

#[test]
fn headings_that_introduce_nothing_are_dropped() {
    let page = article(&format!(
        "{}<h2>Background</h2>{}{}<h2>More on this topic</h2>\
         <div class=related><a href=/x>Another story about tokenizers</a></div>\
         <h2>Empty section</h2><h2>Results</h2>{}<p>Share this:</p>\
         <h3>More from the archive</h3>",
        prose("The first part"),
        prose("The background"),
        prose("More background"),
        prose("The result"),
    ));
    let t = text(&page);
    for want in ["The first part", "Background", "Results", "The result is"] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    for unwanted in [
        "More on this topic",
        "Empty section",
        "Share this:",
        "More from the archive",
        "Another story",
    ] {
        assert!(!t.contains(unwanted), "kept {unwanted:?} in:\n{t}");
    }
    // A lead-in just before a share bar goes with the bar, wherever it stands.
    let page = article(&format!(
        "{}<p>Share this article:</p><div class=share-buttons><a href=/t>Twitter</a></div>{}",
        prose("The start"),
        prose("The rest")
    ));
    let t = text(&page);
    assert!(!t.contains("Share this article"), "{t}");
    assert!(t.contains("The rest is described"), "{t}");
    // A long heading is a lead set in large type: it stays even with nothing under it.
    let lead = "This long heading is really the lead of the story and it is set in large type";
    let t = text(&article(&format!("{}<h2>{lead}</h2>", prose("The body"))));
    assert!(t.contains(lead), "{t}");
}

#[test]
fn teaser_groups_inside_the_content_are_pruned() {
    let teasers: String = (0..4)
        .map(|k| format!("<p><a href=/s{k}>Story number {k} about parsers</a> in brief</p>"))
        .collect();
    let page = article(&format!(
        "{}{}<div class=box>{teasers}</div>{}",
        prose("The opening"),
        prose("The middle"),
        prose("The end")
    ));
    let t = text(&page);
    assert!(!t.contains("Story number"), "{t}");
    assert!(t.contains("The end is described"), "{t}");
    // Paragraphs of running text with a link each are content.
    let linked: String = (0..4)
        .map(|k| {
            format!(
                "<p>Paragraph {k} cites <a href=/r{k}>a source</a> in the middle of a long \
                 sentence that goes on well past the link and explains what the source shows.</p>"
            )
        })
        .collect();
    let t = text(&article(&format!("<div>{linked}</div>")));
    assert!(t.contains("Paragraph 3 cites a source"), "{t}");
}

#[test]
fn a_body_split_into_boxes_of_one_class_is_gathered() {
    let page = format!(
        "<html><body><div class=wrap><section><div class=col><div class=story-text>{}{}</div></div>\
         </section><div class=ad-slot>Advertisement</div><aside class=share>Share</aside>\
         <section><div class=row><div class=col><div class=story-text>{}{}{}</div></div></div>\
         </section></div></body></html>",
        prose("The first box"),
        prose("Its second paragraph"),
        prose("The second box"),
        prose("Its next paragraph"),
        prose("Its last paragraph"),
    );
    let t = text(&page);
    assert!(t.contains("The first box"), "{t}");
    assert!(t.contains("Its last paragraph"), "{t}");
    assert!(!t.contains("Advertisement"), "{t}");
}

#[test]
fn datelines_in_sentences_stay_and_date_stamps_go() {
    let page = article(&format!(
        "<p>Published: 04.05.2021</p><p><span class=dateline>KOBE - </span>A total of 6,000 \
         masks have been lost at a hospital, it was learned on Tuesday, and the police are \
         looking into how it happened.</p>{}<p class=byline>By <time>May 4</time></p>",
        prose("The follow-up")
    ));
    let t = text(&page);
    assert!(t.contains("KOBE - A total of 6,000 masks"), "{t}");
    assert!(!t.contains("04.05.2021"), "{t}");
    assert!(!t.contains("May 4"), "{t}");
    assert!(content::is_date_line("Publiziert: 03.04.2020, 12:35"));
    assert!(content::is_date_line("2020-04-03"));
    assert!(content::is_date_line("04. 05. 2021 Aktuelles"));
    assert!(!content::is_date_line("+81 158-23-2012"));
    assert!(!content::is_date_line(
        "Chapter 3.2.1 of the manual explains it"
    ));
    assert!(!content::is_date_line("Score: 50:50"));
}

#[test]
fn linked_teasers_go_and_unlinked_leads_stay() {
    let page = article(&format!(
        "<div class=teaser><p>The lead of this very story, which sums it up in two sentences \
         before the body begins. It has no link.</p></div>{}{}\
         <div class=article-teaser><a href=/other>Another story</a> that you might like</div>",
        prose("The body"),
        prose("The body, continued")
    ));
    let t = text(&page);
    assert!(t.contains("The lead of this very story"), "{t}");
    assert!(!t.contains("Another story"), "{t}");
}

#[test]
fn a_page_that_is_all_comments_keeps_them() {
    let posts: String = (0..8)
        .map(|k| {
            format!(
                "<div class=comment><p>Post {k}: my phone stopped reaching the store over mobile \
                 data after the update, and nothing in the settings changed, so I wonder what \
                 else could have caused it. Has anyone seen the same, and did a reset of the \
                 network settings help, or did you have to wait for the next update?</p></div>"
            )
        })
        .collect();
    let page = format!(
        "<html><body><nav><a href=/>Forum</a></nav><main><h1>No store over mobile data</h1>\
         <div class=comments>{posts}</div></main></body></html>"
    );
    let t = text(&page);
    assert!(t.contains("Post 0: my phone"), "{t}");
    assert!(t.contains("Post 7: my phone"), "{t}");
    // An article with a comment thread under it still drops the thread.
    assert!(!text(BLOG).contains("Great post"));
}

#[test]
fn plain_lists_and_tables_beside_the_body_join_it() {
    let page = format!(
        "<html><body><article class=recipe><section class=ingredients><h2>Ingredients</h2>\
         <ul><li>200 g flour</li><li>100 g sugar</li><li>2 eggs</li><li>1 lemon</li></ul>\
         </section><section class=steps>{}{}</section></article>\
         <div class=more><ul><li><a href=/1>Cake one</a></li><li><a href=/2>Cake two</a></li>\
         </ul></div></body></html>",
        prose("Mixing the dough"),
        prose("Baking the cake")
    );
    let t = text(&page);
    assert!(t.contains("200 g flour\n100 g sugar"), "{t}");
    assert!(t.contains("Baking the cake"), "{t}");
    assert!(!t.contains("Cake two"), "{t}");
}

#[test]
fn invisible_characters_are_not_written() {
    let t = text(&article(
        "<p>Im Mit&shy;tel&shy;al&shy;ter war der Wein be\u{200b}rühmt, und die Hän\u{ad}ge \
         oberhalb der Stadt waren schon damals mit Reben bepflanzt, wie alte Urkunden zeigen.</p>",
    ));
    assert!(
        t.contains("Im Mittelalter war der Wein berühmt, und die Hänge oberhalb"),
        "{t:?}"
    );
}

#[test]
fn a_consent_banner_goes_even_when_it_says_more_than_the_post() {
    let page = "<html><body><nav><a href=/>Home</a> <a href=/poems>Poems</a> \
        <a href=/stories>Short stories</a> <a href=/about>About this blog</a> \
        <a href=/contact>Contact</a></nav><div id=content><div class=post><p>A short post.</p>\
        <p>Two lines of it.</p></div></div><aside><h3>Archive</h3><ul><li><a href=/1>June 2013</a>\
        </li><li><a href=/2>May 2013</a></li><li><a href=/3>April 2013</a></li></ul></aside>\
        <footer>Proudly powered by a blogging platform. Theme by a designer from the web.</footer>\
        <div class=\"widget widget_cookie_law\">\
        <p>This website uses cookies. By continuing to use this website you agree to their use. \
        To find out more, including how to control cookies, see our cookie policy here.</p>\
        </div></body></html>";
    let t = text(page);
    assert!(!t.contains("cookies"), "{t}");
    assert!(t.contains("A short post."), "{t}");
    // A page wrapper that carries a consent state in its class is still the page.
    let t = text(&format!(
        "<html><body><div class=\"page cookie-consent-given\">{}{}{}{}{}{}{}{}{}{}</div></body></html>",
        prose("One"),
        prose("Two"),
        prose("Three"),
        prose("Four"),
        prose("Five"),
        prose("Six"),
        prose("Seven"),
        prose("Eight"),
        prose("Nine"),
        prose("Ten")
    ));
    assert!(t.contains("Ten is described"), "{t}");
}

#[test]
fn scraps_around_the_text_go_but_salutations_and_figures_stay() {
    let page = article(&format!(
        "<div class=kicker>Local news</div><p>Dear readers,</p>{}{}<p>Advertisement</p>\
         <div>Back to the list</div>",
        prose("The story"),
        prose("The end of it")
    ));
    let t = text(&page);
    assert!(t.starts_with("Dear readers,"), "{t}");
    assert!(t.ends_with("closes the thought."), "{t}");
    let page = article(&format!(
        "{}{}<p>Energy: 390 kcal</p>",
        prose("The recipe"),
        prose("The method")
    ));
    assert!(text(&page).ends_with("390 kcal"));
}

#[test]
fn picture_figures_are_captions_and_code_figures_are_content() {
    let page = article(&format!(
        "{}<figure><img src=a.jpg><span class=description>A harbour at dawn</span>\
         <span>Photo: Jane Doe</span></figure><figure><pre>let x = 1;</pre>\
         <figcaption>Listing 1</figcaption></figure>{}<div class=image-source>Source: agency</div>",
        prose("The harbour"),
        prose("The code")
    ));
    let t = text(&page);
    assert!(!t.contains("A harbour at dawn"), "{t}");
    assert!(!t.contains("Jane Doe"), "{t}");
    assert!(!t.contains("agency"), "{t}");
    assert!(t.contains("let x = 1;"), "{t}");
}

#[test]
fn a_menu_with_the_site_blurb_in_it_is_still_a_menu() {
    let page = format!(
        "<html><body><div id=navigation><ul><li><a href=/>Home</a></li><li><a href=/b>Blog</a>\
         </li></ul><p>This blog looks at the history of architecture and at the cities that it \
         shaped, one building at a time, since the year two thousand and five.</p></div>\
         <div id=post>{}{}</div></body></html>",
        prose("The post"),
        prose("The post, continued")
    );
    let t = text(&page);
    assert!(!t.contains("history of architecture"), "{t}");
    assert!(t.contains("The post, continued"), "{t}");
}

#[test]
fn ruby_readings_are_dropped_and_text_is_composed() {
    let t = text(&article(
        "<p><ruby>子<rt>こ</rt></ruby>どもへの<ruby>虐待<rt>ぎゃくたい</rt></ruby>をなくすための\
         <ruby>法律<rt>ほうりつ</rt></ruby>ができて、<ruby>親<rt>おや</rt></ruby>が子どもを\
         <ruby>教育<rt>きょういく</rt></ruby>するために、体罰をしてはいけないと決まりました。\
         この法律は来年の春から始まります。</p>",
    ));
    assert!(
        t.contains("子どもへの虐待をなくすための法律ができて、親が子どもを教育する"),
        "{t}"
    );
    // A decomposed accent (e + U+0301) comes out composed (U+00E9).
    let t = text(&article(
        "<p>Le cafe\u{301} du coin a ouvert ses portes ce matin, et les habitants du quartier \
         sont venus nombreux pour gou\u{302}ter les premiers croissants de la saison.</p>",
    ));
    assert!(t.contains("Le caf\u{e9} du coin"), "{t:?}");
    assert!(t.contains("go\u{fb}ter"), "{t:?}");
}

#[test]
fn many_boxes_of_one_class_stay_linear() {
    // 20,000 boxes of one class, each in its own section beside a heavy link list, so that one
    // box is the best element and the others join it by their class: every selection pass must
    // stay linear (no part-against-part scans).
    let links: String = (0..6)
        .map(|k| format!("<li><a href=/l{k}>A link with a long enough label {k}</a></li>"))
        .collect();
    let boxes: String = (0..20_000)
        .map(|k| {
            format!(
                "<section><div class=story><p>Box {k} holds a sentence that runs long enough \
                 to be read as prose by the extractor, with a clause or two more.</p></div>\
                 <ul>{links}</ul></section>"
            )
        })
        .collect();
    let page = format!("<html><body>{boxes}</body></html>");
    let t = Instant::now();
    let r = extractor("").extract(&page).unwrap();
    assert!(r.extraction.text.contains("Box 0 holds"));
    assert!(r.extraction.text.contains("Box 19999 holds"));
    assert!(!r.extraction.text.contains("long enough label"));
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
}

#[test]
fn credit_lines_with_a_copyright_sign_go() {
    let page = article(&format!(
        "{}<p>The champion on the first tee. | \u{a9} Augusta National/Getty Images</p>{}\
         <p>The club has published its history under \u{a9} 1934 rules that the founders wrote \
         down, and the text of those rules is reproduced here in full for the first time, with \
         notes on what changed since.</p>",
        prose("The round"),
        prose("The next day")
    ));
    let t = text(&page);
    assert!(!t.contains("Getty Images"), "{t}");
    assert!(t.contains("under \u{a9} 1934 rules"), "{t}");
}

#[test]
fn the_block_model_file_round_trips_and_training_is_deterministic() {
    use super::blocks::{train, Example, Model, TrainOptions};
    let shipped = Model::builtin();
    assert_eq!(&Model::parse(&shipped.to_text()).unwrap(), shipped);
    // A bad file names the line.
    let err = Model::parse("threshold 0.5\nbias x\n").unwrap_err();
    assert!(err.contains("line 2"), "{err}");
    let err = Model::parse("threshold 0.5\nchars_log 1\n").unwrap_err();
    assert!(err.contains("expected feature bias"), "{err}");
    // Lines of a real page, labelled by a rule the model can learn (long lines are content).
    let ex = Extractor::new(ExtractConfig::default())
        .unwrap()
        .with_model(None)
        .collecting_lines();
    let lines = ex.extract(BLOG).unwrap().extraction.lines;
    assert!(lines.len() >= 5, "{lines:?}");
    let examples: Vec<Example> = lines
        .iter()
        .map(|l| Example {
            x: l.x.clone(),
            content: l.text.len() > 60,
            weight: 1.0,
            pos: 0.0,
            neg: 0.0,
        })
        .collect();
    let a = train(&examples, &TrainOptions::default());
    let b = train(&examples, &TrainOptions::default());
    assert_eq!(a.to_text(), b.to_text());
    for (l, e) in lines.iter().zip(&examples) {
        assert_eq!(a.prob(&l.x) >= 0.5, e.content, "{}", l.text);
    }
    // The same with boosted trees: same file twice, read back equal, labels fitted.
    let trees = TrainOptions {
        trees: Some(super::gbdt::TreeOptions {
            trees: 30,
            depth: 3,
            rate: 0.5,
            min_child: 0.05,
            ..Default::default()
        }),
        ..TrainOptions::default()
    };
    let a = train(&examples, &trees);
    assert_eq!(a.to_text(), train(&examples, &trees).to_text());
    assert_eq!(Model::parse(&a.to_text()).unwrap(), a);
    for (l, e) in lines.iter().zip(&examples) {
        assert_eq!(a.prob(&l.x) >= 0.5, e.content, "{}", l.text);
    }
}

/// A news story as news themes write it, with `extra` boilerplate inside the article element
/// between the second and the third paragraph and `tail` after the story.
fn news(extra: &str, tail: &str) -> String {
    format!(
        "<html><head><title>Harbour reopens</title></head><body><header class=site-header>\
         <a href=/>The Example Times</a></header><main><article><h1>Harbour reopens after \
         repairs</h1>{}{}{extra}{}{tail}</article></main><footer class=site-footer>\
         <p>The Example Times, 1 Quay Street</p></footer></body></html>",
        prose("The harbour reopening"),
        prose("The cost of the repairs"),
        prose("The next phase of the works"),
    )
}

fn assert_story(t: &str, unwanted: &[&str]) {
    for want in [
        "The harbour reopening is described",
        "The cost of the repairs",
        "The next phase of the works",
    ] {
        assert!(t.contains(want), "missing {want:?} in:\n{t}");
    }
    for u in unwanted {
        assert!(!t.contains(u), "kept {u:?} in:\n{t}");
    }
}

#[test]
fn related_story_blocks_go() {
    let t = text(&news(
        "<div class=related-stories><h3>More on this story</h3><ul>\
         <li><a href=/a>Council votes to close the old bridge</a></li>\
         <li><a href=/b>Ferry timetable changes for the summer</a></li>\
         <li><a href=/c>Fishermen count the cost of the storm</a></li></ul></div>",
        "<div><p><a href=/d>Tides at a glance: the week ahead</a></p>\
         <p><a href=/e>Photos: the harbour through the years</a></p>\
         <p><a href=/f>Opinion: a harbour for the next century</a></p></div>",
    ));
    assert_story(
        &t,
        &["More on this story", "Council votes", "Tides at a glance"],
    );
}

#[test]
fn bylines_and_author_bios_go() {
    let t = text(&news(
        "",
        "<div class=author-bio><p>Jane Doe covers transport and the coast for The Example \
         Times. She joined the paper in 2015 after ten years at a regional weekly.</p></div>",
    ));
    assert_story(&t, &["Jane Doe covers transport"]);
    let t = text(&news(
        "<p class=byline>By Jane Doe, Transport Reporter</p>",
        "",
    ));
    assert_story(&t, &["By Jane Doe"]);
}

#[test]
fn subscription_and_newsletter_boxes_go() {
    let t = text(&news(
        "<div class=newsletter-signup><h3>Get the morning briefing</h3><p>Sign up for our \
         free newsletter and get the day's top stories in your inbox.</p></div>",
        "<div class=subscribe-box><p>Support local journalism: subscribe today for one pound \
         a week, and read every story on any device.</p></div>",
    ));
    assert_story(
        &t,
        &[
            "morning briefing",
            "Sign up for our",
            "Support local journalism",
        ],
    );
}

#[test]
fn captions_and_credits_go() {
    let t = text(&news(
        "<figure><img src=/h.jpg alt=harbour><figcaption>The reopened harbour at dawn on \
         Monday.</figcaption></figure><div class=image-credit>Photo: John Smith / Agency</div>",
        "<p>Pictures \u{a9} The Example Times 2024</p>",
    ));
    assert_story(&t, &["harbour at dawn", "John Smith", "Pictures"]);
}

#[test]
fn comment_teasers_go() {
    let t = text(&news(
        "",
        "<div class=comments-teaser><a href=#comments>Read 37 comments</a></div>\
         <section id=comments><h3>37 comments</h3><div class=comment><p>I remember the \
         harbour before the storm and it is good to see the boats back in again this \
         spring.</p></div></section>",
    ));
    assert_story(&t, &["37 comments", "I remember the harbour"]);
}

/// The news pages of the tests above (one per boilerplate kind the issue names), each with
/// the text that must go.
fn news_cases() -> Vec<(String, Vec<&'static str>)> {
    vec![
        (
            news(
                "<div class=related-stories><h3>More on this story</h3><ul>\
                 <li><a href=/a>Council votes to close the old bridge</a></li>\
                 <li><a href=/b>Ferry timetable changes for the summer</a></li>\
                 <li><a href=/c>Fishermen count the cost of the storm</a></li></ul></div>",
                "",
            ),
            vec!["More on this story", "Council votes"],
        ),
        (
            news(
                "<p class=byline>By Jane Doe, Transport Reporter</p>",
                "<div class=author-bio><p>Jane Doe covers transport and the coast for The \
                 Example Times. She joined the paper in 2015 after ten years at a regional \
                 weekly.</p></div>",
            ),
            vec!["By Jane Doe", "Jane Doe covers transport"],
        ),
        (
            news(
                "<div class=newsletter-signup><h3>Get the morning briefing</h3><p>Sign up for \
                 our free newsletter and get the day's top stories in your inbox.</p></div>",
                "",
            ),
            vec!["morning briefing", "Sign up for our"],
        ),
        (
            news(
                "<figure><img src=/h.jpg alt=harbour><figcaption>The reopened harbour at dawn \
                 on Monday.</figcaption></figure><div class=image-credit>Photo: John Smith / \
                 Agency</div>",
                "",
            ),
            vec!["harbour at dawn", "John Smith"],
        ),
        (
            news(
                "",
                "<div class=comments-teaser><a href=#comments>Read 37 comments</a></div>",
            ),
            vec!["37 comments"],
        ),
    ]
}

#[test]
fn news_boilerplate_goes_with_and_without_the_block_model() {
    for toml in ["block_model = false", "block_model = true"] {
        let ex = extractor(toml);
        for (page, unwanted) in news_cases() {
            let t = ex.extract(&page).unwrap().extraction.text;
            assert_story(&t, &unwanted);
        }
    }
}

/// A file's lines with their numbers (from 1), as [`super::gbdt::Forest::parse`] reads them.
fn numbered(s: &str) -> impl Iterator<Item = (usize, &str)> {
    s.lines().enumerate().map(|(i, l)| (i + 1, l))
}

#[test]
fn boosted_trees_learn_an_interaction_round_trip_and_train_deterministically() {
    use super::gbdt::{train, Forest, TreeOptions};
    // Content unless exactly one of two flags is set, with the second flag rare, so that the
    // first split has a gain (a balanced XOR has none for a greedy tree): a linear model
    // cannot fit this, a depth-2 tree can.
    let mut xs: Vec<Vec<f32>> = Vec::new();
    let mut y = Vec::new();
    for i in 0..400u32 {
        let a = (i % 2) as f32;
        let b = (i / 2 % 4 == 0) as u32 as f32;
        let noise = (i % 7) as f32 / 7.0;
        xs.push(vec![a, b, noise]);
        y.push((a > 0.5) == (b > 0.5));
    }
    let refs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
    let w = vec![1.0f32; xs.len()];
    let opts = TreeOptions {
        trees: 30,
        depth: 2,
        rate: 0.3,
        min_child: 1.0,
        ..TreeOptions::default()
    };
    let f = train(&refs, &y, &w, &opts);
    assert_eq!(f, train(&refs, &y, &w, &opts), "training is deterministic");
    for (x, y) in xs.iter().zip(&y) {
        assert_eq!(f.margin(x) > 0.0, *y, "{x:?}");
    }
    let names: Vec<String> = ["a", "b", "noise"].iter().map(|s| s.to_string()).collect();
    let text = f.to_text(&names);
    let back = Forest::parse(numbered(&text), &names).unwrap();
    assert_eq!(back, f, "{text}");
    // Bad files name the line.
    let bad = "base 0\ntree\nsplit a 0.5\nleaf 1\n";
    let err = Forest::parse(numbered(bad), &names).unwrap_err();
    assert!(err.contains("line 2") && err.contains("complete"), "{err}");
    let bad = "base 0\ntree\nsplit z 0.5\nleaf 1\nleaf 2\n";
    let err = Forest::parse(numbered(bad), &names).unwrap_err();
    assert!(err.contains("line 3") && err.contains("\"z\""), "{err}");
}

#[test]
fn the_shipped_trees_model_and_its_thresholds_round_trip() {
    use super::blocks::{Model, Scorer};
    let m = Model::builtin();
    assert!(matches!(m.scorer, Scorer::Trees(_)));
    assert_eq!(&Model::parse(&m.to_text()).unwrap(), m);
    // A linear model file without a prose threshold reads it as the line threshold.
    let linear = Model {
        scorer: Scorer::Linear(vec![0.5; super::blocks::n_features()]),
        threshold: 0.25,
        prose_threshold: 0.25,
    };
    let text: String = linear
        .to_text()
        .lines()
        .filter(|l| !l.starts_with("prose_threshold"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(Model::parse(&text).unwrap(), linear);
    let err = Model::parse("threshold 0.5\nmodel forest\n").unwrap_err();
    assert!(err.contains("line 2") && err.contains("forest"), "{err}");
}

#[test]
fn thresholds_are_chosen_on_the_proxy_under_the_recall_guard() {
    use super::blocks::Example;
    use super::train::{choose_threshold, proxy_score, Labelled};
    let line = |pos: f32, neg: f32| Example {
        x: vec![0.0; super::blocks::n_features()],
        content: pos > neg,
        weight: 1.0,
        pos,
        neg,
    };
    // One snippet-scored page: the rules' text finds both gold snippets and four that should
    // not be there; line A holds one of those (p 0.3), line B one gold snippet and three bad
    // ones (p 0.4).
    let page = Labelled {
        examples: vec![line(0.0, 1.0), line(1.0, 3.0)],
        prunable: true,
        found: 2.0,
        kept_bad: 4.0,
        gold: 2.0,
        snippets: true,
        ..Labelled::default()
    };
    let pages = [page];
    let probs = vec![vec![0.3f32, 0.4]];
    let all = |_: usize| true;
    let rules = proxy_score(&pages, &probs, (0.0, 0.0), all);
    assert!((rules.score - 4.0 / 8.0).abs() < 1e-9, "{rules:?}");
    assert_eq!(rules.recall, vec![1.0]);
    let a = proxy_score(&pages, &probs, (0.35, 0.0), all);
    assert!((a.score - 4.0 / 7.0).abs() < 1e-9, "{a:?}");
    let ab = proxy_score(&pages, &probs, (0.45, 0.0), all);
    assert!((ab.score - 2.0 / 3.0).abs() < 1e-9, "{ab:?}");
    assert!((ab.recall_loss(&rules) - 0.5).abs() < 1e-9);
    // Unguarded, dropping both lines scores best; guarded, B's gold snippet must stay. Ties go
    // to the lowest thresholds (the prose one is 0: no prose line here).
    assert_eq!(choose_threshold(&pages, &probs, 1.0, all).0, (0.42, 0.0));
    assert_eq!(choose_threshold(&pages, &probs, 0.0, all).0, (0.32, 0.0));
    // A page that is one line is never pruned.
    let mut one = pages.clone();
    one[0].prunable = false;
    assert_eq!(choose_threshold(&one, &probs, 1.0, all).0, (0.0, 0.0));
}

/// A news page whose standfirst (a short lead paragraph) sits in its own box beside the
/// story body, with a box of links to other stories after the body: the rules choose the
/// body and leave both out.
fn lead_outside() -> String {
    format!(
        "<html><head><title>Harbour reopens</title></head><body>\
         <nav><a href=/>Home</a> <a href=/news>News</a> <a href=/sport>Sport</a></nav>\
         <div class=page><div class=top><div class=standfirst><p>The harbour reopened on \
         Monday after two years of repairs.</p></div></div>\
         <div class=story><div class=body>{}{}{}{}</div></div>\
         <div class=more-box><ul><li><a href=/a>Council sets the budget for next year</a></li>\
         <li><a href=/b>Ferry timetable changes in spring</a></li>\
         <li><a href=/c>New lighthouse museum opens its doors</a></li></ul></div></div>\
         </body></html>",
        prose("The harbour reopening"),
        prose("The cost of the repairs"),
        prose("The next phase of the works"),
        prose("The fishing fleet"),
    )
}

#[test]
fn the_restore_adds_back_a_lead_outside_the_body_but_not_a_link_box() {
    let page = lead_outside();
    let lead = "The harbour reopened on Monday after two years of repairs.";
    let links = "Council sets the budget";
    let rules = extractor("restore = false")
        .extract(&page)
        .unwrap()
        .extraction;
    assert!(!rules.text.contains(lead), "{}", rules.text);
    assert!(!rules.text.contains(links), "{}", rules.text);
    let r = extractor("restore = true")
        .extract(&page)
        .unwrap()
        .extraction;
    assert!(r.text.starts_with(lead), "{}", r.text);
    assert!(
        r.text.contains("The fishing fleet is described"),
        "{}",
        r.text
    );
    assert!(!r.text.contains(links), "{}", r.text);
    assert!(!r.text.contains("Sport"), "{}", r.text);
    assert_eq!(r.restored, 1);
}

#[test]
fn the_restore_model_file_round_trips_and_training_is_deterministic() {
    use super::blocks::{train, Example, Model, TrainOptions};
    use super::restore;
    let shipped = restore::builtin();
    let text = restore::to_text(shipped);
    assert_eq!(
        &Model::parse_with(&text, restore::names()).unwrap(),
        shipped
    );
    // The block scorer's feature list does not read a restore file.
    let err = Model::parse(&text).unwrap_err();
    assert!(err.contains("unknown feature"), "{err}");
    // The lines around a real page's content, labelled by a rule trees can learn (a line that
    // ends a sentence is content).
    let ex = Extractor::new(ExtractConfig::default())
        .unwrap()
        .with_model(None)
        .collecting_lines();
    let lines = ex
        .extract(&lead_outside())
        .unwrap()
        .extraction
        .restore_lines;
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines.iter().all(|l| l.x.len() == restore::names().len()));
    let examples: Vec<Example> = lines
        .iter()
        .map(|l| Example {
            x: l.x.clone(),
            content: l.text.ends_with('.'),
            weight: 1.0,
            pos: 0.0,
            neg: 0.0,
        })
        .collect();
    assert!(examples.iter().any(|e| e.content) && examples.iter().any(|e| !e.content));
    let opts = TrainOptions {
        trees: Some(super::gbdt::TreeOptions {
            trees: 20,
            depth: 3,
            rate: 0.5,
            min_child: 0.05,
            ..Default::default()
        }),
        ..TrainOptions::default()
    };
    let a = train(&examples, &opts);
    assert_eq!(
        restore::to_text(&a),
        restore::to_text(&train(&examples, &opts))
    );
    assert_eq!(
        Model::parse_with(&restore::to_text(&a), restore::names()).unwrap(),
        a
    );
    for (l, e) in lines.iter().zip(&examples) {
        assert_eq!(a.prob(&l.x) >= 0.5, e.content, "{}", l.text);
    }
}

#[test]
fn every_line_of_the_page_is_placed_where_extraction_left_it() {
    use super::content::Place;
    let page = lead_outside()
        .replace("<head>", "<head><script>var x = 1;</script>")
        .replace(
            "<body>",
            "<body><header class=site-header><a href=/>The Example Times</a></header>",
        );
    let r = extractor("").collecting_lines().extract(&page).unwrap();
    let place = |needle: &str| {
        r.extraction
            .page_lines
            .iter()
            .find(|l| l.text.contains(needle))
            .map(|l| (l.place, l.before))
    };
    assert_eq!(
        place("The Example Times"),
        Some((Place::BoilerOutside, true))
    );
    assert_eq!(place("The harbour reopened"), Some((Place::Outside, true)));
    assert_eq!(place("The fishing fleet"), Some((Place::Content, false)));
    assert_eq!(place("Ferry timetable"), Some((Place::Outside, false)));
    assert_eq!(place("var x"), None, "script text is no line");
}
