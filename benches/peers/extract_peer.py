"""Times the peer extractors (trafilatura, resiliparse) and HTML parsers (resiliparse's lexbor
tree, lxml's libxml2 tree: `*_parser`, beside curate's parser alone) on the HTML pages of one
WARC file.

The pages are the same ones curate's bench extracts: every HTML response record, decoded to str
the way ../shared/peers/extraction_bench.py decodes them (utf-8, else the <meta> charset, else
cp1252), held in memory before timing. One process, one thread. Prints one JSON object on its
last line: pages, html_bytes and, per extractor, wall and CPU seconds of the extraction calls
(best of --repeat passes). Run with the extractors' environment:
  ~/.cache/curate-peers/ext/bin/python benches/peers/extract_peer.py FILE.warc.gz --repeat 1
"""
import argparse
import json
import re
import time


def decode_html(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    m = re.search(rb'charset=["\']?([A-Za-z0-9_\-]+)', raw[:4096])
    if m:
        try:
            return raw.decode(m.group(1).decode("ascii"), errors="replace")
        except LookupError:
            pass
    return raw.decode("cp1252", errors="replace")


def extractors():
    ex = {}
    try:
        import trafilatura

        ex["trafilatura"] = lambda h: trafilatura.extract(h, include_comments=False)
        ex["trafilatura_fast"] = lambda h: trafilatura.extract(h, include_comments=False, fast=True)
    except ImportError:
        pass
    try:
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.html import HTMLTree

        ex["resiliparse"] = lambda h: extract_plain_text(HTMLTree.parse(h), main_content=True)
        ex["resiliparse_parser"] = HTMLTree.parse
    except ImportError:
        pass
    try:
        import lxml.html

        utf8 = lxml.html.HTMLParser(encoding="utf-8")
        # lxml parses bytes (a str with an encoding declaration is refused): the pages are
        # encoded before timing, see `inputs` below.
        ex["lxml_parser"] = lambda b: lxml.html.document_fromstring(b, parser=utf8)
    except ImportError:
        pass
    return ex


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("warc")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--extractors", default="trafilatura,trafilatura_fast,resiliparse")
    args = ap.parse_args()
    from warcio.archiveiterator import ArchiveIterator

    pages = []
    with open(args.warc, "rb") as f:
        for rec in ArchiveIterator(f):
            if rec.rec_type == "response":
                ct = rec.http_headers.get_header("Content-Type") if rec.http_headers else ""
                if ct and "html" not in ct.lower():
                    continue
                pages.append(decode_html(rec.content_stream().read()))
    html_bytes = sum(len(p.encode("utf-8")) for p in pages)
    avail = extractors()
    encoded = [p.encode("utf-8") for p in pages]
    out = {"pages": len(pages), "html_bytes": html_bytes, "results": {}}
    for name in args.extractors.split(","):
        fn = avail.get(name)
        if fn is None:
            continue
        inputs = encoded if name == "lxml_parser" else pages
        # Warm-up: imports and lazy initialisation; the parsers (cheap) get a whole pass, as
        # curate's parser does.
        for p in inputs if name.endswith("_parser") else inputs[:3]:
            try:
                fn(p)
            except Exception:
                pass
        best = None
        for _ in range(max(args.repeat, 1)):
            t, c = time.perf_counter(), time.process_time()
            for p in inputs:
                try:
                    fn(p)
                except Exception:
                    pass
            run = (time.perf_counter() - t, time.process_time() - c)
            best = run if best is None or run[1] < best[1] else best
        out["results"][name] = {"wall_s": best[0], "cpu_s": best[1]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
