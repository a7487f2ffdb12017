"""Times datatrove's ParquetReader (pyarrow iter_batches -> Documents) on one Parquet file.

Prints one JSON object on its last line: docs, text_bytes (UTF-8 bytes of the texts), and for
each configuration ("default": read_metadata=True, every other column as metadata, as curate
does by default; "text_only": read_metadata=False) the wall and CPU seconds of this process for
the first (cold: lazy imports) and the best of the later (warm) passes. Needs pyarrow in the
datatrove environment (datatrove[io]):
  ~/.cache/curate-peers/dt/bin/python benches/peers/datatrove_parquet_read.py FILE.parquet --repeat 3
"""
import argparse
import json
import os
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("parquet")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from datatrove.pipeline.readers import ParquetReader

    folder, name = os.path.split(os.path.abspath(args.parquet))
    out = {"input_bytes": os.path.getsize(args.parquet)}
    for config, read_metadata in [("default", True), ("text_only", False)]:
        runs, docs = [], []
        for _ in range(max(args.repeat, 1)):
            t, c = time.perf_counter(), time.process_time()
            r = ParquetReader(folder, glob_pattern=name, recursive=False, read_metadata=read_metadata)
            docs = list(r.run(None, 0, 1))
            runs.append((time.perf_counter() - t, time.process_time() - c))
        warm = runs[1:] or runs
        out["docs"] = len(docs)
        out["text_bytes"] = sum(len(d.text.encode("utf-8")) for d in docs)
        out[config] = {
            "cold_wall_s": runs[0][0], "cold_cpu_s": runs[0][1],
            "warm_wall_s": min(w for w, _ in warm), "warm_cpu_s": min(c for _, c in warm),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
