"""datatrove 0.10.1's four heuristic filters (Gopher repetition, Gopher quality, C4 quality,
FineWeb quality), with their default thresholds, on a JSONL.gz of {"id", "text"} lines.

Two modes, both with the datatrove environment (~/.cache/curate-peers/dt/bin/python):

  decisions IN.jsonl.gz OUT.jsonl   one line per document: {"id", "lang", "gopher_repetition",
                                    "gopher_quality", "c4", "fineweb"}; each filter value is
                                    "keep" or the drop reason datatrove gives. `lang` is
                                    fastText lid.176.ftz's top label (--lid MODEL), so that
                                    the caller can restrict to English the way datatrove_bench
                                    does (--only-lang en keeps those only). Each filter sees
                                    the original text (C4 edits its copy).
  bench IN.jsonl.gz [--repeat N]    times the four filters chained (short-circuit, as in a
                                    datatrove pipeline) over all documents, one thread; prints one
                                    JSON object on the last line: docs, bytes, seconds (best of N).

The agreement test (tests/it/heuristics.rs) and the heuristics benchmark run this script.
"""
import argparse
import copy
import gzip
import json
import sys
import time


def load(path):
    from datatrove.data import Document

    docs = []
    with gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8") as f:
        for line in f:
            v = json.loads(line)
            docs.append(Document(text=v["text"], id=str(v["id"]), metadata={"url": v.get("url")}))
    return docs


def filters():
    from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                            GopherRepetitionFilter)

    return {
        "gopher_repetition": GopherRepetitionFilter(),
        "gopher_quality": GopherQualityFilter(),
        "c4": C4QualityFilter(),
        "fineweb": FineWebQualityFilter(),
    }


def verdict(r):
    if r is True or (isinstance(r, tuple) and r[0]):
        return "keep"
    return r[1] if isinstance(r, tuple) and len(r) > 1 else "drop"


def decisions(args):
    docs = load(args.input)
    fs = filters()
    model = None
    if args.lid:
        import fasttext

        model = fasttext.load_model(args.lid)
    with open(args.output, "w", encoding="utf-8") as out:
        for d in docs:
            row = {"id": d.id}
            if model is not None:
                row["lang"] = model.predict(d.text.replace("\n", " "), k=1)[0][0].replace("__label__", "")
                if args.only_lang and row["lang"] != args.only_lang:
                    continue
            for name, f in fs.items():
                row[name] = verdict(f.filter(copy.deepcopy(d)))
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def bench(args):
    docs = load(args.input)
    fs = list(filters().values())
    nbytes = sum(len(d.text.encode("utf-8")) for d in docs)
    best = None
    kept = 0
    for _ in range(max(args.repeat, 1)):
        batch = [copy.deepcopy(d) for d in docs]  # C4 edits doc.text
        t0 = time.process_time()
        kept = 0
        for d in batch:
            ok = True
            for f in fs:
                if verdict(f.filter(d)) != "keep":
                    ok = False
                    break
            kept += ok
        t = time.process_time() - t0
        best = t if best is None else min(best, t)
    print(json.dumps({"docs": len(docs), "bytes": nbytes, "seconds": best, "kept": kept}))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    a = sub.add_parser("decisions")
    a.add_argument("input")
    a.add_argument("output")
    a.add_argument("--lid")
    a.add_argument("--only-lang", help="with --lid: run the filters on documents of this language only")
    b = sub.add_parser("bench")
    b.add_argument("input")
    b.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    {"decisions": decisions, "bench": bench}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
