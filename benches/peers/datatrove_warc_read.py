"""Times datatrove's WarcReader (warcio + cchardet + python-magic) on one WARC file.

Prints one JSON object on its last line: docs, html_bytes (UTF-8 bytes of the decoded pages),
input_bytes, seconds (best of --repeat). Run with the datatrove peer environment:
  ~/.cache/curate-peers/dt/bin/python benches/peers/datatrove_warc_read.py FILE.warc.gz
"""
import argparse
import json
import os
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("warc")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    from datatrove.pipeline.readers import WarcReader

    folder, name = os.path.split(os.path.abspath(args.warc))
    best, docs = None, []
    for _ in range(args.repeat):
        t = time.perf_counter()
        r = WarcReader(folder, glob_pattern=name, recursive=False)
        docs = list(r.run(None, 0, 1))
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    html_bytes = sum(len(d.text.encode("utf-8")) for d in docs)
    print(json.dumps({"docs": len(docs), "html_bytes": html_bytes,
                      "input_bytes": os.path.getsize(args.warc), "seconds": best}))


if __name__ == "__main__":
    main()
