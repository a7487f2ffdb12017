#!/usr/bin/env python3
"""Builds pipelines/sample/sample.warc.gz, the quickstart's input, from pipelines/sample/pages/.

The pages are the repo's own (written for it). The WARC mimics a Common Crawl file: a warcinfo
record, then request + response pairs, one gzip member per record, plus records that a real crawl
holds and a pipeline must skip or dedup: an exact copy under another URL, an older crawl of the
same URL, a 404, a redirect and an image. Deterministic: same pages, same bytes.

    python3 scripts/make_sample_warc.py
"""
import gzip
import hashlib
import io
import os
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = os.path.join(ROOT, "pipelines", "sample", "pages")
OUT = os.path.join(ROOT, "pipelines", "sample", "sample.warc.gz")

# (page file or special, URL, crawl date)
RECORDS = [
    ("river-restoration.html", "https://riverside-notes.example/2024/03/alder-river", "2024-05-20T10:01:02Z"),
    ("river-restoration.html", "https://riverside-notes.example/2024/03/alder-river?utm_source=feed", "2024-04-11T08:00:00Z"),
    ("river-restoration.html", "https://mirror.example.net/riverside/alder-river", "2024-05-21T11:30:00Z"),
    ("river-restoration-reprint.html", "https://valley-gazette.example/news/alder-river-reprint", "2024-05-22T09:15:00Z"),
    ("rust-iterators.html", "https://devjournal.example/rust/iterators-guide", "2024-05-20T12:00:00Z"),
    ("quadratic-formula.html", "https://math-notebook.example/algebra/quadratic-formula", "2024-05-20T12:05:00Z"),
    ("euclid-primes.html", "https://proof-of-the-week.example/infinitely-many-primes", "2024-05-20T12:10:00Z"),
    ("python-forum.html", "https://python-help.example/t/list-comprehension-returns-none/4411", "2024-05-20T12:15:00Z"),
    ("fahrrad-stadt.html", "https://stadtzeitung.example/verkehr/fahrrad-staedte", "2024-05-20T12:20:00Z"),
    ("pain-maison.html", "https://cuisine-facile.example/recettes/pain-cocotte", "2024-05-20T12:25:00Z"),
    ("historia-faros.html", "https://historias.example/faros/breve-historia", "2024-05-20T12:30:00Z"),
    ("lighthouse-keepers.html", "https://coastal-histories.example/people/last-keepers", "2024-05-20T12:35:00Z"),
    ("contact-office.html", "https://st-aidans.example/contact", "2024-05-20T12:40:00Z"),
    ("cheap-deals.html", "https://cheap-deals.example/best", "2024-05-20T12:45:00Z"),
    ("lorem.html", "https://template-site.example/page", "2024-05-20T12:50:00Z"),
    # More general, math and code pages, so that the quickstart's mix fills all four buckets.
    ("beekeeping-winter.html", "https://hedgerow-apiary.example/blog/bees-in-winter", "2024-05-20T13:00:00Z"),
    ("library-renovation.html", "https://ashford-weekly.example/news/library-reopens", "2024-05-20T13:01:00Z"),
    ("night-trains.html", "https://rail-letters.example/2024/night-trains", "2024-05-20T13:02:00Z"),
    ("tomato-seedlings.html", "https://small-plot.example/vegetables/tomatoes-from-seed", "2024-05-20T13:03:00Z"),
    ("beach-cleanup.html", "https://friends-of-sandbay.example/news/spring-clean", "2024-05-20T13:04:00Z"),
    ("clock-museum.html", "https://weekend-wanderer.example/museums/clocks", "2024-05-20T13:05:00Z"),
    ("chess-club.html", "https://millbrook-centre.example/clubs/chess", "2024-05-20T13:06:00Z"),
    ("bus-route-change.html", "https://valley-buses.example/notices/route-7", "2024-05-20T13:07:00Z"),
    ("estuary-birds.html", "https://coast-and-marsh.example/guides/autumn-waders", "2024-05-20T13:08:00Z"),
    ("allotment-water.html", "https://eastfield-allotments.example/news/rainwater-tanks", "2024-05-20T13:09:00Z"),
    ("choir-concert.html", "https://harbourtown-arts.example/reviews/winter-concert", "2024-05-20T13:09:30Z"),
    ("repair-cafe.html", "https://fix-it-together.example/a-saturday", "2024-05-20T13:09:45Z"),
    ("geometric-series.html", "https://math-notebook.example/analysis/geometric-series", "2024-05-20T13:10:00Z"),
    ("pythagoras-proof.html", "https://proof-of-the-week.example/pythagoras-rearranged", "2024-05-20T13:11:00Z"),
    ("product-rule.html", "https://math-notebook.example/calculus/product-rule", "2024-05-20T13:12:00Z"),
    ("modular-inverse.html", "https://number-corner.example/modular-inverse", "2024-05-20T13:13:00Z"),
    ("triangle-numbers.html", "https://number-corner.example/triangle-numbers", "2024-05-20T13:14:00Z"),
    ("go-word-count.html", "https://devjournal.example/go/word-count", "2024-05-20T13:20:00Z"),
    ("shell-find-large.html", "https://terminal-tips.example/shell/largest-files", "2024-05-20T13:21:00Z"),
    ("js-debounce.html", "https://frontend-notes.example/js/debounce", "2024-05-20T13:22:00Z"),
    ("sql-group-by.html", "https://sql-snippets.example/group-by-having", "2024-05-20T13:23:00Z"),
    (":404", "https://devjournal.example/rust/missing-page", "2024-05-20T12:55:00Z"),
    (":redirect", "http://devjournal.example/rust", "2024-05-20T12:56:00Z"),
    (":png", "https://coastal-histories.example/img/tower.png", "2024-05-20T12:57:00Z"),
]

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def rid(*parts):
    return "<urn:uuid:%s>" % uuid.UUID(hashlib.sha1("|".join(parts).encode()).hexdigest()[:32])


def member(headers, block):
    head = "WARC/1.1\r\n" + "".join("%s: %s\r\n" % kv for kv in headers)
    head += "Content-Length: %d\r\n\r\n" % len(block)
    raw = head.encode() + block + b"\r\n\r\n"
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as g:
        g.write(raw)
    return buf.getvalue()


def http_response(status, ctype, body, extra=()):
    head = "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (status, ctype, len(body))
    head += "".join("%s: %s\r\n" % kv for kv in extra)
    return head.encode() + b"\r\n" + body


def main():
    out = []
    info = b"software: curate sample builder\r\nformat: WARC File Format 1.1\r\n"
    out.append(member([("WARC-Type", "warcinfo"), ("WARC-Date", "2024-05-20T10:00:00Z"),
                       ("WARC-Record-ID", rid("warcinfo")), ("Content-Type", "application/warc-fields")], info))
    for page, url, date in RECORDS:
        if page == ":404":
            block = http_response("404 Not Found", "text/html; charset=utf-8", b"<html><body><h1>Not found</h1></body></html>")
        elif page == ":redirect":
            block = http_response("301 Moved Permanently", "text/html", b"", [("Location", url.replace("http:", "https:") + "/")])
        elif page == ":png":
            block = http_response("200 OK", "image/png", PNG)
        else:
            with open(os.path.join(PAGES, page), "rb") as f:
                block = http_response("200 OK", "text/html; charset=utf-8", f.read())
        req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: curate-sample/1.0\r\n\r\n"
               % (url.split("/", 3)[3:] and "/" + url.split("/", 3)[3] or "/", url.split("/")[2])).encode()
        out.append(member([("WARC-Type", "request"), ("WARC-Target-URI", url), ("WARC-Date", date),
                           ("WARC-Record-ID", rid("req", url, date)), ("Content-Type", "application/http; msgtype=request")], req))
        out.append(member([("WARC-Type", "response"), ("WARC-Target-URI", url), ("WARC-Date", date),
                           ("WARC-Record-ID", rid("resp", url, date)),
                           ("WARC-Payload-Digest", "sha1:" + hashlib.sha1(block).hexdigest()),
                           ("Content-Type", "application/http; msgtype=response")], block))
    with open(OUT, "wb") as f:
        f.write(b"".join(out))
    print("wrote %s (%d records)" % (OUT, len(out)))


if __name__ == "__main__":
    main()
