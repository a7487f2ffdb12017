#!/usr/bin/env python3
"""datatrove 0.10.1's FineWeb-style pipeline, WARC to Megatron-style token files, one core.

The peer side of `cargo bench -p curate-benches --bench e2e`, one process, one thread. The
steps are datatrove's own, chained in this process as its LocalPipelineExecutor chains them
(one task, rank 0 of 1); the filtered documents stay in memory between the dedup stages (this
venv has neither orjson nor pyarrow for datatrove's JSONL/Parquet writers; curate writes its
intermediate Parquet to disk, so this favours datatrove):
  1. WarcReader -> URLFilter (its UT1 lists) -> Trafilatura(favour_precision) -> LanguageFilter
     (en >= 0.65, lid.176 given by --lid: the bench machine is offline) -> GopherRepetitionFilter
     -> GopherQualityFilter -> C4QualityFilter(filter_no_terminal_punct=False, as FineWeb) ->
     FineWebQualityFilter -> PIIFormatter
  2. MinhashDedupSignature (5-grams, 14 x 8)   3. MinhashDedupBuckets (14 ranks)
  4. MinhashDedupCluster   5. MinhashDedupFilter -> DocumentTokenizer (the same tokenizer.json
     and EOS as curate's mix)
datatrove 0.10.1 has no URL dedup, and FineWeb runs no exact dedup (MinHash catches exact
copies). Prints one JSON line: documents read, kept after the filters, kept after dedup, tokens.

Usage: datatrove_e2e.py INPUT_DIR GLOB WORK_DIR --tokenizer tokenizer.json --lid lid.176.ftz
"""
import argparse
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input_dir")
    ap.add_argument("glob")
    ap.add_argument("work")
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--lid", required=True)
    args = ap.parse_args()

    from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                                  MinhashDedupFilter, MinhashDedupSignature)
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter, LanguageFilter, URLFilter)
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.tokens import DocumentTokenizer
    from datatrove.utils.logging import logger
    from fasttext.FastText import _FastText

    logger.remove()
    w = args.work
    cfg = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
    lang = LanguageFilter(languages=["en"], language_threshold=0.65)
    lang.model._model = _FastText(args.lid)  # offline: the shared lid.176 instead of a download

    def chain(steps, data=None, rank=0, world=1):
        for step in steps:
            data = step.run(data, rank, world)
        return data

    read = []

    def counted(data):
        for d in data:
            read.append(1)
            yield d

    urls = URLFilter()
    from tldextract import TLDExtract
    # Offline: tldextract's bundled suffix list, not a download attempt (its retries cost wall
    # time that is no part of the work).
    urls.tldextractor = TLDExtract(suffix_list_urls=())
    reader = WarcReader(args.input_dir, glob_pattern=args.glob, doc_progress=False)
    filters = [
        urls,
        Trafilatura(favour_precision=True, timeout=1.0),
        lang,
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
        PIIFormatter(),
    ]
    docs = list(chain(filters, counted(reader.run(None, 0, 1))))
    list(chain([MinhashDedupSignature(output_folder=f"{w}/sigs", config=cfg)], iter(docs)) or [])
    for b in range(cfg.num_buckets):
        list(MinhashDedupBuckets(input_folder=f"{w}/sigs", output_folder=f"{w}/buckets", config=cfg)
             .run(None, b, cfg.num_buckets) or [])
    list(MinhashDedupCluster(input_folder=f"{w}/buckets", output_folder=f"{w}/remove", config=cfg)
         .run(None, 0, 1) or [])
    kept = []

    def after_dedup(data):
        for d in data:
            kept.append(1)
            yield d

    tok = DocumentTokenizer(output_folder=f"{w}/tokens", tokenizer_name_or_path=args.tokenizer,
                            eos_token="<|endoftext|>")
    list(tok.run(after_dedup(MinhashDedupFilter(input_folder=f"{w}/remove").run(iter(docs), 0, 1)), 0, 1) or [])

    tokens = 0
    for root, _, files in os.walk(f"{w}/tokens"):
        for f in files:
            if f.endswith(".ds"):
                tokens += os.path.getsize(os.path.join(root, f)) // 2  # uint16 ids (vocabulary < 65,536)
    print(json.dumps({"read": len(read), "kept_after_filters": len(docs), "kept_after_dedup": len(kept),
                      "tokens": tokens}))


if __name__ == "__main__":
    sys.exit(main())
