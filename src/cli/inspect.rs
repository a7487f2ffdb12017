//! `curate inspect`: print documents of a run with their signals and verdicts.
//!
//! Answers "why was this page dropped?" (`--url ... --dropped`) and "what does a document with
//! quality < 0.2 look like?" (`--where "quality.hq < 0.2"`) in one command; `--domains`
//! lists the sites that site-level safety removed, and why.

use anyhow::anyhow;
use stages::Document;

use super::CliError;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The run's output folder or URI; several: one corpus of many runs (nights), documents
    /// later runs retracted left out.
    #[arg(num_args = 0..)]
    pub output: Vec<String>,
    /// Every run a dedup history holds, as one corpus (with any runs given above).
    #[arg(long)]
    pub history: Option<String>,
    /// Document id.
    #[arg(long)]
    pub id: Option<String>,
    /// Document URL.
    #[arg(long)]
    pub url: Option<String>,
    /// SQL condition over columns and signals, e.g. "quality.hq < 0.2 AND lang = 'en'".
    #[arg(long = "where")]
    pub filter: Option<String>,
    /// Look among dropped documents (otherwise kept ones, and dropped ones when an --id or --url
    /// is not found among them).
    #[arg(long)]
    pub dropped: bool,
    /// At most this many documents.
    #[arg(long, default_value_t = 5)]
    pub limit: usize,
    /// Lines of text to show per document (0: all).
    #[arg(long, default_value_t = 12)]
    pub lines: usize,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// List the domains that `safety.domains` stages removed, and why (top `--limit`).
    #[arg(long)]
    pub domains: bool,
}

fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub fn run(a: InspectArgs) -> Result<(), CliError> {
    let storage = Default::default();
    let scratch = std::env::temp_dir().join("curate-scratch");
    let runs = if a.output.len() == 1 && a.history.is_none() {
        let store = crate::storage::open_store(&a.output[0], &storage, &scratch)
            .map_err(|e| CliError::Failed(anyhow!("{e}")))?;
        vec![crate::corpus::CorpusRun {
            dir: a.output[0].clone(),
            store,
        }]
    } else {
        crate::corpus::list_runs(&a.output, a.history.as_deref(), &storage, &scratch)
            .map_err(super::engine_error)?
    };
    if runs.is_empty() {
        return Err(CliError::Config(
            "give a run's output, several, or --history".into(),
        ));
    }
    let retractions =
        crate::corpus::Retractions::load(&runs).map_err(|e| CliError::Failed(anyhow!("{e}")))?;
    if a.domains {
        for r in &runs {
            if runs.len() > 1 {
                println!("== run {}", r.dir);
            }
            print_domains(r.store.as_ref(), &a)?;
        }
        return Ok(());
    }
    let mut conds = Vec::new();
    if let Some(id) = &a.id {
        conds.push(format!("id = {}", sql_str(id)));
    }
    if let Some(u) = &a.url {
        conds.push(format!("url = {}", sql_str(u)));
    }
    if let Some(w) = &a.filter {
        conds.push(format!("({w})"));
    }
    let cond = if conds.is_empty() {
        "true".to_string()
    } else {
        conds.join(" AND ")
    };
    let cond = crate::query::Condition::new(&cond);
    let mut tables_to_try = vec![];
    if a.dropped {
        tables_to_try.push("dropped");
    } else {
        tables_to_try.push("docs");
        if a.id.is_some() || a.url.is_some() {
            tables_to_try.push("dropped");
        }
    }
    let (mut shown, mut left_out) = (0, 0);
    for t in tables_to_try {
        // Runs in corpus order (nights in the order they ran).
        for (ri, r) in runs.iter().enumerate() {
            if shown >= a.limit {
                break;
            }
            let files = crate::io::stored::list(r.store.as_ref(), t)
                .map_err(|e| CliError::Failed(anyhow!("{e}")))?;
            // Retracted rows are skipped below: ask for as many more as there can be.
            let want = a.limit - shown + retractions.len();
            let found =
                crate::io::stored::first_rows(r.store.as_ref(), &files, Some(&cond), &[], want)
                    .map_err(|e| match e {
                        crate::io::stored::RowsError::Condition(m) => CliError::Config(m),
                        crate::io::stored::RowsError::Read(e) => CliError::Failed(anyhow!("{e}")),
                    })?;
            for d in found.into_values().flatten() {
                if retractions.excludes(ri, &d.id, Some(&d.url)) {
                    left_out += 1;
                    continue;
                }
                if shown >= a.limit {
                    break;
                }
                shown += 1;
                if a.json {
                    println!("{}", crate::io::jsonl::doc_json(&d));
                } else {
                    if runs.len() > 1 {
                        println!("run:      {}", r.dir);
                    }
                    print_doc(&d, a.lines);
                }
            }
        }
    }
    if left_out > 0 {
        eprintln!("{left_out} matching documents left out: retracted by a later run");
    }
    if shown == 0 {
        eprintln!("no matching document");
    }
    Ok(())
}

/// `--domains`: the top removed domains of each `safety.domains` stage of the run.
fn print_domains(store: &dyn stages::Store, a: &InspectArgs) -> Result<(), CliError> {
    use crate::report::domains;
    let names = domains::stage_names(store);
    if names.is_empty() {
        eprintln!("no safety.domains stage in this run");
    }
    for name in names {
        match domains::load(store, &name) {
            Some(v) if a.json => println!("{v}"),
            Some(v) => print!("{}", domains::text(&name, &v, a.limit)),
            None => eprintln!("{name}: no {} yet", stages::safety::domains::REPORT_FILE),
        }
    }
    Ok(())
}

fn print_doc(d: &Document, lines: usize) {
    println!("== {}", d.id);
    println!("url:      {}", d.url);
    match &d.verdict {
        stages::Verdict::Kept => println!("verdict:  kept"),
        stages::Verdict::Dropped { stage, reason } => {
            println!("verdict:  DROPPED by {stage}: {reason}")
        }
    }
    if !d.flags.is_empty() {
        let f: Vec<String> = d.flags.iter().map(|(s, r)| format!("{s}:{r}")).collect();
        println!("flags:    {}", f.join(", "));
    }
    println!("source:   {} @ {}", d.source.file, d.source.offset);
    if !d.metadata.is_empty() {
        let m: Vec<String> = d.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("metadata: {}", m.join("  "));
    }
    println!("signals:");
    for (k, v) in d.signals.iter() {
        match v {
            stages::SignalValue::F64(x) => println!("  {k:<36} {x:.4}"),
            other => println!("  {k:<36} {other}"),
        }
    }
    let total = d.text().lines().count();
    println!("text ({} chars, {total} lines):", d.text().chars().count());
    for l in d
        .text()
        .lines()
        .take(if lines == 0 { usize::MAX } else { lines })
    {
        println!("  | {l}");
    }
    if lines != 0 && total > lines {
        println!("  | ... ({} more lines)", total - lines);
    }
    println!();
}
