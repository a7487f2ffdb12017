#!/usr/bin/env python3
"""Writes FineWeb-style Parquet files from real text, for curate's Parquet input tests.

Reads JSON lines {id, url, text} (plain or gzip; e.g. ../shared/data/corpora/
warc-extracted-texts.jsonl.gz) and writes, under OUT:
  fineweb/NNN.parquet   FineWeb's columns (text, id, dump, url, date, file_path, language,
                        language_score, token_count), split over --files files, written by
                        --writer (pyarrow or duckdb) with --row-group-rows rows per row group;
  same.jsonl            the same documents as JSON lines (same fields), for comparisons;
  bad/                  a truncated Parquet file, one with scrambled pages, a file that is
                        not Parquet, and a Parquet file without a text column (with --bad).
--copies N repeats the corpus N times (ids made distinct) to make large files.

The metadata columns are derived from each record (dump and date from its position, language
and language_score from its share of ASCII letters, token_count from whitespace words): they
have FineWeb's names and types, not FineWeb's values.
"""

import argparse
import gzip
import json
import os


def records(path, copies):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    for c in range(copies):
        for i, r in enumerate(rows):
            text = r["text"]
            letters = [ch for ch in text if ch.isalpha()]
            ascii_share = (
                sum(ch.isascii() for ch in letters) / len(letters) if letters else 0.0
            )
            k = c * len(rows) + i
            yield {
                "text": text,
                "id": r["id"] if c == 0 else f"{r['id']}#{c}",
                "dump": f"CC-MAIN-2024-{10 + k % 3:02d}",
                "url": r.get("url") or "",
                "date": f"2024-0{1 + k % 9}-1{k % 10}T10:{k % 60:02d}:00Z",
                "file_path": f"s3://commoncrawl/crawl-data/part-{k % 7:05d}.warc.gz",
                "language": "en" if ascii_share > 0.9 else "other",
                "language_score": round(ascii_share, 6),
                "token_count": len(text.split()),
            }


def write_pyarrow(rows, path, row_group_rows, compression):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("text", pa.string()),
                ("id", pa.string()),
                ("dump", pa.string()),
                ("url", pa.string()),
                ("date", pa.string()),
                ("file_path", pa.string()),
                ("language", pa.string()),
                ("language_score", pa.float64()),
                ("token_count", pa.int64()),
            ]
        ),
    )
    pq.write_table(table, path, row_group_size=row_group_rows, compression=compression)


def write_duckdb(rows, path, row_group_rows, compression):
    import duckdb

    tmp = path + ".jsonl"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    con = duckdb.connect()
    cols = (
        "{'text': 'VARCHAR', 'id': 'VARCHAR', 'dump': 'VARCHAR', 'url': 'VARCHAR', "
        "'date': 'VARCHAR', 'file_path': 'VARCHAR', 'language': 'VARCHAR', "
        "'language_score': 'DOUBLE', 'token_count': 'BIGINT'}"
    )
    codec = "uncompressed" if compression == "none" else compression
    con.execute(
        f"COPY (SELECT * FROM read_json('{tmp}', format='newline_delimited', columns={cols})) "
        f"TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE {row_group_rows}, COMPRESSION {codec})"
    )
    os.remove(tmp)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--writer", choices=["pyarrow", "duckdb"], default="pyarrow")
    ap.add_argument("--files", type=int, default=1)
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N documents")
    ap.add_argument("--row-group-rows", type=int, default=1000)
    ap.add_argument("--compression", default="zstd")
    ap.add_argument("--bad", action="store_true")
    a = ap.parse_args()

    rows = list(records(a.src, a.copies))
    if a.limit:
        rows = rows[: a.limit]
    os.makedirs(os.path.join(a.out, "fineweb"), exist_ok=True)
    write = write_pyarrow if a.writer == "pyarrow" else write_duckdb
    per = -(-len(rows) // a.files)
    for f in range(a.files):
        part = rows[f * per : (f + 1) * per]
        write(part, os.path.join(a.out, "fineweb", f"{f:03d}.parquet"), a.row_group_rows, a.compression)
    with open(os.path.join(a.out, "same.jsonl"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    if a.bad:
        bad = os.path.join(a.out, "bad")
        os.makedirs(bad, exist_ok=True)
        good = open(os.path.join(a.out, "fineweb", "000.parquet"), "rb").read()
        with open(os.path.join(bad, "truncated.parquet"), "wb") as f:
            f.write(good[: len(good) // 2])
        # Pages scrambled in the middle, footer intact: a row group that fails to decode.
        scrambled = bytearray(good)
        for i in range(len(good) // 3, len(good) // 3 + 2000):
            scrambled[i] ^= 0x5A
        with open(os.path.join(bad, "scrambled.parquet"), "wb") as f:
            f.write(scrambled)
        with open(os.path.join(bad, "not-parquet.parquet"), "wb") as f:
            f.write(b"this is a text file with a .parquet name\n" * 20)
        notext = [{k: v for k, v in r.items() if k != "text"} for r in rows[:50]]
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(notext), os.path.join(bad, "no-text.parquet"))
    print(len(rows))


if __name__ == "__main__":
    main()
