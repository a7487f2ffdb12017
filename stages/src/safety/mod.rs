//! Safety stages: personal data redaction, URL blocklists and bad-word ratios.
//!
//! [`pii`] finds and replaces personal data (emails, phone numbers, public IPs, credit cards,
//! IBANs, US SSNs); [`url_filter`] drops pages whose URL is on a domain or URL blocklist or
//! carries banned words; [`dirty_words`] measures, per language, the fraction of words that
//! are on a bad-word list.

pub mod dirty_words;
pub mod pii;
pub mod url_filter;
