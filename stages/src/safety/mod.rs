//! Safety stages: personal data redaction, URL blocklists and bad-word ratios.
//!
//! [`pii`] finds and replaces personal data (emails, phone numbers, public IPs, credit cards,
//! IBANs, US SSNs); [`url_filter`] drops pages whose URL is on a domain or URL blocklist or
//! carries banned words; [`dirty_words`] measures, per language, the fraction of words that
//! are on a bad-word list. [`domains`] judges whole sites (registered domains, see
//! [`suffix`]) from what those stages found on their pages.

pub mod dirty_words;
pub mod domains;
pub mod pii;
pub mod suffix;
pub mod url_filter;
