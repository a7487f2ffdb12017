//! `tokenize.count`: stores each document's token count (BOS/EOS included) with the mix's
//! tokenizer, so that selection plans token shares exactly from signals, without re-reading text.

use std::sync::Arc;

use crate::config::{ConfigError, Purpose, StageArgs};
use crate::declare::{Declare, Declared, Sig, I64};
use crate::stage::StageDef;
use crate::stage::{Built, Outcome, Stage};
use crate::tokenize::{Tokenizer, TokenizerConfig};
use crate::Document;

pub static DEF: StageDef = StageDef {
    kind: "tokenize.count",
    about: "Token count of each document with a given tokenizer (for exact mix planning)",
    example: "tokenizer = \"cl100k_base\"",
    build,
};

pub struct TokenCount {
    name: String,
    signal: Sig<I64>,
    tok: Option<Arc<Tokenizer>>,
    declared: Declared,
}

fn build(args: &StageArgs) -> Result<Built, ConfigError> {
    let cfg: TokenizerConfig = args.parse()?;
    // Validate the vocabulary even when only judging (names and paths are cheap to check).
    let tok = match args.purpose {
        Purpose::Run => Some(Arc::new(Tokenizer::from_config(&cfg, args.base_dir)?)),
        Purpose::Select => {
            if !matches!(cfg.tokenizer.as_str(), "cl100k_base" | "o200k_base") {
                args.resolve_path("tokenizer", &cfg.tokenizer)?;
            }
            None
        }
    };
    let mut d = Declare::new(args.name);
    let signal = d.signal("tokens", "tokens of the document, BOS/EOS included");
    Ok(Built::Map(Box::new(TokenCount {
        name: args.name.to_string(),
        signal,
        tok,
        declared: d.finish(),
    })))
}

thread_local! {
    static IDS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Stage for TokenCount {
    fn name(&self) -> &str {
        &self.name
    }

    fn declared(&self) -> Option<&Declared> {
        Some(&self.declared)
    }

    fn process(&self, doc: &mut Document) -> Outcome {
        let Some(tok) = &self.tok else {
            return Outcome::Keep;
        };
        let n = IDS.with(|ids| {
            let mut ids = ids.borrow_mut();
            ids.clear();
            tok.session().encode_document(doc.text(), &mut ids);
            ids.len()
        });
        self.signal.set(&mut doc.signals, n as i64);
        Outcome::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_tokens_with_eos() {
        let s = crate::kit::stage(&DEF, "tokens", DEF.example).unwrap();
        let mut d = Document::new("a", "Hello world");
        s.process(&mut d);
        assert_eq!(d.signals.i64("tokens.tokens"), Some(3));
    }
}
