"""Times datatrove's WarcReader (warcio + cchardet + python-magic) on one WARC file.

Prints one JSON object on its last line: docs, html_bytes (UTF-8 bytes of the decoded pages),
input_bytes, and for the first (cold: lazy imports, libmagic loading) and the best of the later
(warm) runs, wall seconds and CPU seconds of this process. Run with the datatrove environment:
  ~/.cache/curate-peers/dt/bin/python benches/peers/datatrove_warc_read.py FILE.warc.gz --repeat 3
"""
import argparse
import json
import os
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("warc")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from datatrove.pipeline.readers import WarcReader

    folder, name = os.path.split(os.path.abspath(args.warc))
    runs, docs = [], []
    for _ in range(max(args.repeat, 1)):
        t, c = time.perf_counter(), time.process_time()
        r = WarcReader(folder, glob_pattern=name, recursive=False)
        docs = list(r.run(None, 0, 1))
        runs.append((time.perf_counter() - t, time.process_time() - c))
    warm = runs[1:] or runs
    html_bytes = sum(len(d.text.encode("utf-8")) for d in docs)
    print(json.dumps({
        "docs": len(docs), "html_bytes": html_bytes, "input_bytes": os.path.getsize(args.warc),
        "cold_wall_s": runs[0][0], "cold_cpu_s": runs[0][1],
        "warm_wall_s": min(w for w, _ in warm), "warm_cpu_s": min(c for _, c in warm),
    }))


if __name__ == "__main__":
    main()
