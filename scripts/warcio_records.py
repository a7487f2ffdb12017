"""Lists the records of WARC files as Python `warcio` reads them (reference for curate's tests).

For each file argument, prints one JSON line:
  {"file": ..., "records": [[type, offset, record_id, payload_len, payload_crc32], ...], "error": null}
payload_len / payload_crc32 describe warcio's decoded payload (HTTP headers removed, chunked and
Content-Encoding undone) for response, resource and conversion records, else null. "error" holds
the exception that stopped warcio, if any (records read before it are listed).
"""
import json
import sys
import zlib

from warcio.archiveiterator import ArchiveIterator


def main():
    for path in sys.argv[1:]:
        records, error = [], None
        try:
            with open(path, "rb") as fh:
                it = ArchiveIterator(fh)
                for rec in it:
                    rid = rec.rec_headers.get_header("WARC-Record-ID") or ""
                    plen = pcrc = None
                    if rec.rec_type in ("response", "resource", "conversion"):
                        data = rec.content_stream().read()
                        plen, pcrc = len(data), zlib.crc32(data)
                    records.append([rec.rec_type, it.get_record_offset(), rid.strip("<> "), plen, pcrc])
        except Exception as e:  # noqa: BLE001 - reported to the caller
            error = f"{type(e).__name__}: {e}"
        print(json.dumps({"file": path, "records": records, "error": error}))


if __name__ == "__main__":
    main()
