//! Boilerplate hints: what an element's tag, ARIA role, class and id say about its job.
//!
//! Class and id values are split into words (at punctuation and camelCase boundaries,
//! lowercased) and each word is looked up; a few stems also match inside compound words
//! (`commentlist`, `sidebarleft`, `socialshare`). The words are general web vocabulary (what
//! CMS themes, ad servers and consent tools name their parts), never names taken from the
//! evaluation pages.

use super::dom::Tag;

/// A kind of boilerplate, each dropped unless the config keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Boiler {
    /// Menus, breadcrumbs, pagination, skip links.
    Nav,
    /// Site headers (logo, global menu).
    Header,
    /// Page and article footers.
    Footer,
    /// Sidebars and widgets.
    Sidebar,
    /// Reader comments.
    Comments,
    /// Share and follow widgets.
    Share,
    /// Cookie and consent banners, modal dialogs.
    Cookie,
    /// Ads and sponsored blocks.
    Ads,
    /// Related, recommended and popular links; newsletter and sign-up boxes; tag clouds.
    Related,
    /// Bylines, dates, author boxes, post metadata.
    Meta,
    /// Figure captions and photo credits.
    Captions,
}

impl Boiler {
    pub const ALL: [Boiler; 11] = [
        Boiler::Nav,
        Boiler::Header,
        Boiler::Footer,
        Boiler::Sidebar,
        Boiler::Comments,
        Boiler::Share,
        Boiler::Cookie,
        Boiler::Ads,
        Boiler::Related,
        Boiler::Meta,
        Boiler::Captions,
    ];

    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            Boiler::Nav => "nav",
            Boiler::Header => "header",
            Boiler::Footer => "footer",
            Boiler::Sidebar => "sidebar",
            Boiler::Comments => "comments",
            Boiler::Share => "share",
            Boiler::Cookie => "cookie",
            Boiler::Ads => "ads",
            Boiler::Related => "related",
            Boiler::Meta => "meta",
            Boiler::Captions => "captions",
        }
    }

    pub fn from_name(s: &str) -> Option<Boiler> {
        Boiler::ALL.into_iter().find(|b| b.name() == s)
    }

    pub fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// What the element's own tag says.
pub fn tag_hint(tag: Tag) -> Option<Boiler> {
    match tag {
        Tag::Nav | Tag::Menu => Some(Boiler::Nav),
        Tag::Header => Some(Boiler::Header),
        Tag::Footer => Some(Boiler::Footer),
        Tag::Aside => Some(Boiler::Sidebar),
        Tag::Dialog => Some(Boiler::Cookie),
        Tag::Figcaption => Some(Boiler::Captions),
        Tag::Time | Tag::Address => Some(Boiler::Meta),
        _ => None,
    }
}

/// What an ARIA role says.
pub fn role_hint(role: &str) -> Option<Boiler> {
    let r = role.trim();
    let eq = |s: &str| r.eq_ignore_ascii_case(s);
    if eq("navigation") || eq("menu") || eq("menubar") || eq("search") {
        Some(Boiler::Nav)
    } else if eq("banner") {
        Some(Boiler::Header)
    } else if eq("contentinfo") {
        Some(Boiler::Footer)
    } else if eq("complementary") {
        Some(Boiler::Sidebar)
    } else if eq("dialog") || eq("alertdialog") {
        Some(Boiler::Cookie)
    } else {
        None
    }
}

/// Words that mark an element as part of the main content; they veto a `header` hint
/// (`entry-header` holds the headline) and a `footer` hint stays.
const CONTENT_WORDS: &[&str] = &[
    "article", "entry", "post", "content", "story", "headline", "title", "body", "text",
];

/// Words that say a class names a state or a layout option of the element, not its job
/// (`has-sidebar`, `no-comments`, `modal-enabled`, `is-sticky`): such a class is ignored.
const STATE_WORDS: &[&str] = &[
    "has", "no", "not", "with", "without", "enabled", "disabled", "active", "is", "open", "hide",
    "hidden", "show", "toggle", "js", "mobile", "layout", "template", "true", "false",
];

/// What class and id words say. `None` when nothing matches. Each space-separated class is
/// read on its own.
pub fn class_hint(value: &str) -> Option<Boiler> {
    let mut found: Option<Boiler> = None;
    let mut header = false;
    let mut content = false;
    for item in value.split_ascii_whitespace() {
        // A BEM modifier (`block__element--modifier`) names a variant, not the job; but a
        // `--related` variant is a box of links to other pages.
        let (item, modifier) = item.split_once("--").unwrap_or((item, ""));
        if found.is_none() && !modifier.is_empty() {
            let mut related = false;
            for_words(modifier, |w| {
                related |= matches!(word_hint(w, false), Some(Boiler::Related))
            });
            if related {
                found = Some(Boiler::Related);
            }
        }
        let mut state = false;
        let mut item_found: Option<Boiler> = None;
        let mut item_header = false;
        let mut first = true;
        let mut picture = false;
        for_words(item, |w| {
            // `image-source`, `img_description`, `photo-info`: what is said about a picture.
            if picture
                && matches!(w, "description" | "source" | "subtitle" | "copyright")
                && item_found.is_none()
            {
                item_found = Some(Boiler::Captions);
            }
            picture = matches!(
                w,
                "img" | "image" | "photo" | "foto" | "picture" | "pic" | "bild"
            );
            if STATE_WORDS.contains(&w) {
                state = true;
            }
            if CONTENT_WORDS.contains(&w) {
                content = true;
            }
            match word_hint(w, first) {
                Some(Boiler::Header) => item_header = true,
                Some(Boiler::Cookie) => item_found = Some(Boiler::Cookie),
                Some(b) if item_found.is_none() => item_found = Some(b),
                _ => {}
            }
            first = false;
        });
        if state {
            continue;
        }
        header |= item_header;
        // A consent banner is one whatever else its classes say (`widget cookie-law`).
        if item_found == Some(Boiler::Cookie) {
            return Some(Boiler::Cookie);
        }
        if found.is_none() {
            found = item_found;
        }
    }
    found.or(if header && !content {
        Some(Boiler::Header)
    } else {
        None
    })
}

/// The kind one word names; `first`: the word starts its class (`widget` only counts there:
/// page builders call every block `builder-widget-...`).
fn word_hint(w: &str, first: bool) -> Option<Boiler> {
    use Boiler::*;
    let exact = match w {
        "widget" | "widgets" if first => Sidebar,
        "byline" | "author" | "authors" | "authorbox" | "postmeta" | "meta" | "dateline"
        | "bio" | "postmetadata" | "metadata" | "postinfo" | "date" | "pubdate" | "published"
        | "timestamp" | "contact" | "contactbox" | "utility" => Meta,
        "caption" | "captions" | "credit" | "credits" | "photocredit" | "legend" => Captions,
        "nav" | "navbar" | "navigation" | "navi" | "menu" | "menus" | "mainmenu" | "submenu"
        | "topmenu" | "megamenu" | "breadcrumb" | "breadcrumbs" | "crumbs" | "pagination"
        | "pager" | "paging" | "skip" | "skiplink" | "skiplinks" | "topnav" | "subnav"
        | "sitenav" | "mainnav" | "offcanvas" | "jump" | "prevnext" => Nav,
        "header" | "masthead" | "topbar" | "branding" => Header,
        "footer" | "copyright" | "colophon" | "license" | "licence" | "disclaimer" => Footer,
        "sidebar" | "rail" | "sidebox" | "aside" => Sidebar,
        "comment" | "comments" | "commentlist" | "disqus" | "respond" | "replies" => Comments,
        "share" | "sharing" | "social" | "sharedaddy" | "addthis" | "shariff" | "socials"
        | "sociallinks" | "rating" | "ratings" | "voting" => Share,
        "cookie" | "cookies" | "consent" | "gdpr" | "cookiebar" | "modal" | "popup" | "overlay"
        | "flyout" => Cookie,
        "ad" | "ads" | "advert" | "adverts" | "advertisement" | "advertising" | "adsense"
        | "adslot" | "adunit" | "sponsor" | "sponsored" | "promo" | "taboola" | "outbrain"
        | "banner" | "banners" | "adv" | "werbung" | "anzeige" | "cta" | "affiliate" => Ads,
        "related" | "recommended" | "recommendations" | "popular" | "trending" | "newsletter"
        | "subscribe" | "subscription" | "signup" | "login" | "tags" | "tagcloud" | "taglist"
        | "morelinks" => Related,
        _ => {
            // Stems inside compound words.
            return if w.starts_with("comment") {
                Some(Comments)
            } else if w.contains("sidebar") {
                Some(Sidebar)
            } else if w.contains("cookie") {
                Some(Cookie)
            } else if w.starts_with("breadcrumb") || w.starts_with("navbar") {
                Some(Nav)
            } else if w.contains("footer") {
                Some(Footer)
            } else if w.starts_with("share") || w.contains("sharing") || w.starts_with("social") {
                Some(Share)
            } else if w.starts_with("advert") {
                Some(Ads)
            } else if w.starts_with("related") || w.starts_with("newsletter") {
                Some(Related)
            } else {
                None
            };
        }
    };
    Some(exact)
}

/// Whether a class or id value names a teaser (`teaser`, `excerpt`): a box that announces an
/// article. It is one for another article when it links there; a teaser without a link is the
/// page's own lead.
pub fn names_teaser(value: &str) -> bool {
    let mut hit = false;
    for_words(value, |w| {
        hit |= matches!(w, "teaser" | "teasers" | "excerpt" | "snippet")
    });
    hit
}

/// Calls `f` with each lowercased word of a class or id value (split at non-alphanumerics and
/// at lower-to-upper camelCase boundaries).
pub fn for_words(value: &str, mut f: impl FnMut(&str)) {
    let mut buf = [0u8; 40];
    let mut n = 0usize;
    let mut overflow = false;
    let mut prev_lower = false;
    let flush = |buf: &[u8; 40], n: &mut usize, overflow: &mut bool, f: &mut dyn FnMut(&str)| {
        if *n > 0 && !*overflow {
            if let Ok(s) = std::str::from_utf8(&buf[..*n]) {
                f(s);
            }
        }
        *n = 0;
        *overflow = false;
    };
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() {
            if b.is_ascii_uppercase() && prev_lower {
                flush(&buf, &mut n, &mut overflow, &mut f);
            }
            prev_lower = b.is_ascii_lowercase() || b.is_ascii_digit();
            if n < buf.len() {
                buf[n] = b.to_ascii_lowercase();
                n += 1;
            } else {
                overflow = true;
            }
        } else {
            prev_lower = false;
            flush(&buf, &mut n, &mut overflow, &mut f);
        }
    }
    flush(&buf, &mut n, &mut overflow, &mut f);
}

/// Whether an inline `style` hides the element (`display:none`, `visibility:hidden`).
pub fn style_hides(style: &str) -> bool {
    let mut compact = [0u8; 256];
    let mut n = 0;
    for &b in style.as_bytes() {
        if !b.is_ascii_whitespace() && n < compact.len() {
            compact[n] = b.to_ascii_lowercase();
            n += 1;
        }
    }
    let s = &compact[..n];
    memchr::memmem::find(s, b"display:none").is_some()
        || memchr::memmem::find(s, b"visibility:hidden").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_hints() {
        let mut w = vec![];
        for_words("site-Header mainNav  commentList_2", |s| {
            w.push(s.to_string())
        });
        assert_eq!(w, ["site", "header", "main", "nav", "comment", "list", "2"]);
        assert_eq!(class_hint("site-header"), Some(Boiler::Header));
        assert_eq!(class_hint("entry-header"), None);
        assert_eq!(class_hint("entry-content"), None);
        assert_eq!(class_hint("sidebarLeft"), Some(Boiler::Sidebar));
        assert_eq!(class_hint("commentlist"), Some(Boiler::Comments));
        assert_eq!(class_hint("ad-slot top"), Some(Boiler::Ads));
        assert_eq!(class_hint("head"), None);
        assert_eq!(class_hint("loading"), None);
        assert_eq!(class_hint("box article modal-enabled"), None);
        assert_eq!(class_hint("o-section o-section--has-ads"), None);
        assert_eq!(class_hint("elementor-widget-text-editor"), None);
        assert_eq!(class_hint("clearfix subnav_true"), None);
        assert_eq!(class_hint("TestReport__Section--Ads"), None);
        assert_eq!(class_hint("c-nav--main"), Some(Boiler::Nav));
        assert_eq!(class_hint("widget widget_text"), Some(Boiler::Sidebar));
        assert!(style_hides("color: red; DISPLAY : none"));
        assert!(!style_hides("display:block"));
        assert_eq!(role_hint("navigation"), Some(Boiler::Nav));
    }
}
