#!/usr/bin/env python3
"""Scores the predictions of `cargo run -p stages --release --example extract_cv -- ../shared DIR` with the peers' scorer.

For each dataset (trafilatura-eval: snippet P/R/F1; CleanEval: shingle P/R/F1) and each variant
(`rules`: the rules alone; `cv`: each page extracted by a block model trained on the folds that do
not hold its site; `insample`: the model trained on every page), prints the figures on all pages
and on the news/blog subset (pages whose URL reads as an article or a post, chosen by URL before
any extraction: see `is_news_or_blog` in stages/src/extract/train.rs). The metric code is
`../shared/peers/extraction_bench.py` (and its `aeb_metric.py`), imported unmodified.

Usage: python extract_cv.py DIR [--shared ../shared]   (needs warcio: the peers' `ext` venv)
"""
import argparse
import importlib.util
import json
import sys
from pathlib import Path


def load_bench(shared: Path):
    spec = importlib.util.spec_from_file_location("extraction_bench", shared / "peers/extraction_bench.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["extraction_bench"] = mod
    spec.loader.exec_module(mod)
    return mod


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "../shared")
    args = ap.parse_args()
    eb = load_bench(args.shared)
    aeb = eb.load_aeb_eval()
    pages = [json.loads(l) for l in (args.dir / "pages.jsonl").read_text().splitlines() if l.strip()]
    rows = []
    for ds, data in [("trafeval", args.shared / "data"),
                     ("cleaneval", args.shared / "data/extraction/cleaneval-final")]:
        _, gold = eb.load_dataset(ds, data)
        news = {p["id"] for p in pages if p["dataset"] == ds and p["news"]}
        for variant in ["rules", "cv", "insample"]:
            path = args.dir / f"{variant}.{ds}.jsonl"
            got = {}
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    d = json.loads(line)
                    got[str(d["id"])] = d.get("text") or ""
            for subset, keys in [("all", list(gold)), ("news/blog", [k for k in gold if k in news])]:
                g = {k: gold[k] for k in keys}
                pred = {k: {"articleBody": got.get(k, "")} for k in keys}
                r = eb.score(aeb, g, pred, 0)
                m = "snippet" if "snippet_f1" in r else "shingle"
                rows.append((ds, subset, len(keys), variant,
                             r[f"{m}_f1"], r[f"{m}_precision"], r[f"{m}_recall"]))
    print("| set | pages | variant | F1 | P | R |")
    print("|---|---|---|---|---|---|")
    for ds, subset, n, v, f1, p, r in rows:
        print(f"| {ds} {subset} | {n} | {v} | {f1:.4f} | {p:.4f} | {r:.4f} |")
    print(json.dumps([dict(zip(["set", "subset", "pages", "variant", "f1", "p", "r"], x)) for x in rows]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
