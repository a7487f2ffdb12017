//! `safety.pii`: finds personal data in the text and replaces it with placeholders.
//!
//! Types and the rules that find them (hand-written scanners over the bytes, no backtracking):
//! - **email**: `local@domain.tld`, the local part of letters, digits and `._%+-`, the domain
//!   of dot-separated labels ending in an alphabetic top-level domain;
//! - **ip**: IPv4 dotted quads and IPv6 addresses (`::` compression, embedded IPv4) that are
//!   public: private, loopback, link-local, shared, documentation, benchmarking, multicast and
//!   reserved ranges (the IANA special-purpose registries) are left alone;
//! - **iban**: country code, check digits and account number, optionally grouped by spaces in
//!   fours; the length must be the country's and the ISO 7064 mod-97 checksum must hold;
//! - **credit_card**: 12 to 19 digits, contiguous or grouped by single spaces or dashes, with
//!   an issuer prefix (2-6, 1800, 0604) and a valid Luhn check digit;
//! - **ssn**: US social security numbers `AAA-GG-SSSS` with a valid area (not 000, 666 or
//!   9xx), group (not 00) and serial (not 0000);
//! - **phone**: 7 to 15 digits in groups separated by one consistent separator (space, `-` or
//!   `.`), with an optional `+` country code, parenthesized area or trunk code (`(08)`,
//!   `+41 (0)71`) and extension (`x123`). Shapes that are unambiguous (a `+`, a parenthesized
//!   part, three or more groups with eight or more digits) are phone numbers unless the words
//!   just before name another kind of number (licence, passport, account, order, ...); shapes
//!   that could as well be an address or a reference (two groups, ten or eleven contiguous
//!   digits) need a phone word (phone, call, mobile, fax, ...) just before or after. Dates,
//!   years ranges, decimals, thousands groupings and postal codes (`12345-6789`, `3610-114`)
//!   are not phone numbers.
//!
//! Where spans overlap, the earlier type in the list above wins. Counts per type are signals;
//! the redacted text replaces the document's.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{ConfigError, StageArgs};
use crate::declare::{count, Declare, Declared, Sig, I64};
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::Document;

mod digits;
mod email;
mod iban;
mod ip;
mod phone;

use digits::*;
use email::*;
use iban::*;
use ip::*;
use phone::*;

/// A kind of personal data.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Ip,
    Iban,
    CreditCard,
    Ssn,
    Phone,
}

impl PiiKind {
    pub const ALL: [PiiKind; 6] = [
        PiiKind::Email,
        PiiKind::Ip,
        PiiKind::Iban,
        PiiKind::CreditCard,
        PiiKind::Ssn,
        PiiKind::Phone,
    ];

    /// The config and signal name.
    pub fn name(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Ip => "ip",
            PiiKind::Iban => "iban",
            PiiKind::CreditCard => "credit_card",
            PiiKind::Ssn => "ssn",
            PiiKind::Phone => "phone",
        }
    }

    /// The default placeholder.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "<EMAIL>",
            PiiKind::Ip => "<IP_ADDRESS>",
            PiiKind::Iban => "<IBAN>",
            PiiKind::CreditCard => "<CREDIT_CARD>",
            PiiKind::Ssn => "<US_SSN>",
            PiiKind::Phone => "<PHONE>",
        }
    }
}

/// One piece of personal data found in a text (byte offsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PiiSpan {
    pub start: usize,
    pub end: usize,
    pub kind: PiiKind,
}

/// Finds the spans of the given kinds, sorted and without overlaps.
pub fn find_pii(text: &str, kinds: &[PiiKind]) -> Vec<PiiSpan> {
    let b = text.as_bytes();
    let mut all: Vec<PiiSpan> = Vec::new();
    // Every number-shaped kind starts at (or just before) the first digit of a digit run: the
    // scanners visit those positions only.
    let starts = digit_starts(b);
    for &k in &PiiKind::ALL {
        if !kinds.contains(&k) {
            continue;
        }
        let mut found = Vec::new();
        match k {
            PiiKind::Email => emails(text, &mut found),
            PiiKind::Ip => ips(text, &starts, &mut found),
            PiiKind::Iban => ibans(b, &starts, &mut found),
            PiiKind::CreditCard => cards(b, &starts, &mut found),
            PiiKind::Ssn => ssns(b, &starts, &mut found),
            PiiKind::Phone => phones(text, &starts, &mut found),
        }
        // Earlier kinds win: keep only spans that overlap nothing found so far.
        for (s, e) in found {
            if !all.iter().any(|x| x.start < e && s < x.end) {
                all.push(PiiSpan {
                    start: s,
                    end: e,
                    kind: k,
                });
            }
        }
    }
    all.sort_by_key(|s| s.start);
    all
}

/// Positions of the first digit of every run of ASCII digits. Works on 64-byte blocks: a
/// bit mask of the digits (a loop the compiler vectorizes), then the bits whose previous byte
/// is not a digit; most blocks hold none.
fn digit_starts(b: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut carry = 0u64; // 1 when the last byte of the previous block is a digit
    for (k, block) in b.chunks(64).enumerate() {
        let mut mask = 0u64;
        for (j, &c) in block.iter().enumerate() {
            mask |= ((c.wrapping_sub(b'0') < 10) as u64) << j;
        }
        let mut starts = mask & !((mask << 1) | carry);
        carry = mask >> 63;
        while starts != 0 {
            v.push(k * 64 + starts.trailing_zeros() as usize);
            starts &= starts - 1;
        }
    }
    v
}

/// Replaces each span by its kind's placeholder.
pub fn redact(text: &str, spans: &[PiiSpan], placeholder: impl Fn(PiiKind) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for s in spans {
        out.push_str(&text[last..s.start]);
        out.push_str(&placeholder(s.kind));
        last = s.end;
    }
    out.push_str(&text[last..]);
    out
}

#[inline]
fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

// ---------------------------------------------------------------- stage

/// `[stages.pii]`: which kinds to redact and with what.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    /// Kinds to find: any of "email", "ip", "iban", "credit_card", "ssn", "phone".
    pub types: Vec<PiiKind>,
    /// Placeholder per kind, e.g. `{ email = "[EMAIL]" }` (defaults: `<EMAIL>`, `<PHONE>`,
    /// `<IP_ADDRESS>`, `<CREDIT_CARD>`, `<IBAN>`, `<US_SSN>`).
    pub placeholders: BTreeMap<PiiKind, String>,
    /// Replace the text with its redacted form (false: only count).
    pub redact: bool,
    /// Drop documents with more pieces of personal data than this (contact lists, leaks).
    pub max_matches: Option<u64>,
}

impl Default for PiiConfig {
    fn default() -> Self {
        PiiConfig {
            types: PiiKind::ALL.to_vec(),
            placeholders: BTreeMap::new(),
            redact: true,
            max_matches: None,
        }
    }
}

pub static DEF: StageDef = StageDef {
    kind: "safety.pii",
    about: "Redacts emails, phone numbers, public IPs, credit cards, IBANs and US SSNs; counts per type",
    example: "types = [\"email\", \"phone\", \"ip\", \"credit_card\", \"iban\", \"ssn\"]\nredact = true\n[placeholders]\nemail = \"<EMAIL>\"\nphone = \"<PHONE>\"",
    build,
};

pub struct Pii {
    name: String,
    cfg: PiiConfig,
    sig: Vec<(PiiKind, Sig<I64>)>,
    sig_total: Sig<I64>,
    declared: Declared,
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: PiiConfig = args.parse()?;
    if cfg.types.is_empty() {
        return Err(ConfigError::new("types", "list at least one kind"));
    }
    Ok(Built::Map(Box::new(Pii::from_config(args.name, cfg))))
}

impl Pii {
    /// The placeholder for a kind.
    pub fn placeholder(&self, k: PiiKind) -> String {
        self.cfg
            .placeholders
            .get(&k)
            .cloned()
            .unwrap_or_else(|| k.placeholder().to_string())
    }

    /// Finds, counts and (when configured) redacts; returns the counts per kind.
    pub fn apply(&self, doc: &mut Document) -> BTreeMap<PiiKind, usize> {
        let spans = find_pii(doc.text(), &self.cfg.types);
        let mut counts: BTreeMap<PiiKind, usize> = self.cfg.types.iter().map(|k| (*k, 0)).collect();
        for s in &spans {
            *counts.entry(s.kind).or_default() += 1;
        }
        if self.cfg.redact && !spans.is_empty() {
            let red = redact(doc.text(), &spans, |k| self.placeholder(k));
            doc.set_text(red);
        }
        counts
    }

    /// Builds the stage from a config section (for the `curate pii` command).
    pub fn from_config(name: &str, cfg: PiiConfig) -> Pii {
        let mut d = Declare::new(name);
        let mut sig: Vec<(PiiKind, Sig<I64>)> = Vec::new();
        for &k in &cfg.types {
            // A kind listed twice is counted once.
            if !sig.iter().any(|(s, _)| *s == k) {
                let help = "pieces of this kind found (and redacted)";
                sig.push((k, d.signal(k.name(), help)));
            }
        }
        let sig_total = d.signal::<I64>("total", "pieces of personal data found");
        d.max(
            sig_total,
            count(cfg.max_matches),
            "max_matches",
            "too_much_pii",
        );
        Pii {
            name: name.to_string(),
            sig,
            sig_total,
            declared: d.finish(),
            cfg,
        }
    }
}

impl Stage for Pii {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let counts = self.apply(doc);
        let mut total = 0;
        for (k, s) in &self.sig {
            let c = counts.get(k).copied().unwrap_or(0);
            total += c;
            s.set(&mut doc.signals, c as i64);
        }
        self.sig_total.set(&mut doc.signals, total as i64);
        Outcome::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_run_starts() {
        let plain = |b: &[u8]| -> Vec<usize> {
            (0..b.len())
                .filter(|&i| b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()))
                .collect()
        };
        let mut t = String::new();
        for i in 0..300 {
            t.push_str(&"x".repeat(i % 7));
            t.push_str(&(i * 7919 % 100_003).to_string());
            if i % 5 == 0 {
                t.push('\u{e9}');
            }
        }
        for cut in [0, 1, 63, 64, 65, 127, 128, 129, t.len()] {
            let b = &t.as_bytes()[..cut];
            assert_eq!(digit_starts(b), plain(b), "first {cut} bytes");
        }
    }

    fn found(text: &str) -> Vec<(PiiKind, &str)> {
        find_pii(text, &PiiKind::ALL)
            .iter()
            .map(|s| (s.kind, &text[s.start..s.end]))
            .collect()
    }

    #[test]
    fn each_kind_is_found() {
        use PiiKind::*;
        assert_eq!(
            found("Mail jane.doe+x@mail.example.org."),
            [(Email, "jane.doe+x@mail.example.org")]
        );
        assert_eq!(
            found("from 8.8.8.8 and 2a00:1450:4001:81c::200e,"),
            [(Ip, "8.8.8.8"), (Ip, "2a00:1450:4001:81c::200e")]
        );
        assert_eq!(
            found("IBAN GB82 WEST 1234 5698 7654 32 ok"),
            [(Iban, "GB82 WEST 1234 5698 7654 32")]
        );
        assert_eq!(
            found("card 4111 1111 1111 1111 or 4111111111111111"),
            [
                (CreditCard, "4111 1111 1111 1111"),
                (CreditCard, "4111111111111111")
            ]
        );
        assert_eq!(found("SSN 123-45-6789"), [(Ssn, "123-45-6789")]);
        assert_eq!(found("Japan +81 158-23-2012"), [(Phone, "+81 158-23-2012")]);
        assert_eq!(
            found("Call +1 (415) 555-2671 x12 now"),
            [(Phone, "+1 (415) 555-2671 x12")]
        );
        assert_eq!(found("Tel: 030 1234567"), [(Phone, "030 1234567")]);
    }

    #[test]
    fn lookalikes_are_left_alone() {
        // Private and documentation addresses, failed checksums, dates, versions, prices.
        for t in [
            "server 192.168.1.10 and 10.0.0.1 and 127.0.0.1 and fe80::1 and 2001:db8::1",
            "GB82WEST12345698765433 (bad checksum)",
            "4111 1111 1111 1112",
            "SSN 000-12-3456 or 666-12-3456",
            "on 2021-03-04 at 10:30:00, version 1.2.3.4.5",
            "it cost 1 234 567 euros in 1990-2000; pi is 3.14159265",
            "the restaurant is at 17151 2450 Crown St",
            "zip 12345-6789 and 3610-114",
            "driver's license number is 2270-66-1551",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }

    #[test]
    fn stage_redacts_and_counts() {
        let s = crate::kit::stage(&DEF, "pii", DEF.example).unwrap();
        let mut d = Document::new("a", "Write to bob@example.com or call 415-555-2671.");
        s.process(&mut d);
        assert_eq!(d.text(), "Write to <EMAIL> or call <PHONE>.");
        assert_eq!(d.signals.i64("pii.email"), Some(1));
        assert_eq!(d.signals.i64("pii.phone"), Some(1));
        assert_eq!(d.signals.i64("pii.total"), Some(2));
        let s = crate::kit::stage(
            &DEF,
            "pii",
            "types = [\"email\"]\nredact = false\nmax_matches = 0",
        )
        .unwrap();
        let mut d = Document::new("b", "bob@example.com");
        s.process(&mut d);
        assert_eq!(d.text(), "bob@example.com");
        assert_eq!(s.judge(&d.signals), Outcome::Drop("too_much_pii"));
        let e = crate::kit::stage(&DEF, "pii", "types = [\"passport\"]")
            .err()
            .unwrap();
        assert!(e.key.starts_with("types"), "{e}");
    }
}
