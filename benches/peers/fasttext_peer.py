"""Python fastText beside curate's fastText: predictions for parity tests, and timings.

Subcommands (each prints one JSON object on its last line, or writes JSONL):
  predict MODEL TEXTS OUT [K]   TEXTS: one text per line (already normalized, no newlines);
                                OUT: one JSON line per text {"labels": [...], "probs": [...]}
  train INPUT OUT [key=value ...]  fastText.train_supervised on a fastText-format file
                                   ("__label__x text" lines); prints {"seconds": s}
  bench MODEL TEXTS              predict(k=1) on every line; prints {"docs_per_s", "mb_per_s"}
"""
import json
import sys
import time

import fasttext

fasttext.FastText.eprint = lambda *a, **k: None  # silence the load-model warning


def texts(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def main():
    cmd = sys.argv[1]
    if cmd == "predict":
        model = fasttext.load_model(sys.argv[2])
        k = int(sys.argv[5]) if len(sys.argv) > 5 else -1
        with open(sys.argv[4], "w", encoding="utf-8") as out:
            for t in texts(sys.argv[3]):
                labels, probs = model.predict(t, k=k, threshold=0.0)
                out.write(json.dumps({
                    "labels": [l[len("__label__"):] for l in labels],
                    "probs": [float(p) for p in probs],
                }) + "\n")
        print(json.dumps({"ok": True}))
    elif cmd == "train":
        kw = {}
        for a in sys.argv[4:]:
            k, v = a.split("=", 1)
            kw[k] = v if k == "loss" else (float(v) if "." in v or "e-" in v else int(v))
        t = time.perf_counter()
        model = fasttext.train_supervised(sys.argv[2], verbose=0, **kw)
        secs = time.perf_counter() - t
        model.save_model(sys.argv[3])
        print(json.dumps({"seconds": secs}))
    elif cmd == "bench":
        model = fasttext.load_model(sys.argv[2])
        lines = texts(sys.argv[3])
        nbytes = sum(len(t.encode("utf-8")) for t in lines)
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            for line in lines:
                model.predict(line, k=1)
            best = min(best, time.perf_counter() - t)
        print(json.dumps({"docs_per_s": len(lines) / best, "mb_per_s": nbytes / best / 1e6}))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
