#!/usr/bin/env python3
"""Python fastText on the validation split `curate train head` uses, for the accuracy table of
docs/onnx.md: groups with int(sha1(group)[:8], 16) % 4 == 0 held out (group = id up to '#');
web negatives = the JSONL written by scripts/train_onnx_classifiers.sh, their test split
(% 5 == 0) dropped. Text preprocessing: lower-case, whitespace collapsed, first 2000 chars.

usage: fasttext_valid.py SHARED_DIR WEB_JSONL
"""
import gzip, hashlib, json, os, re, sys, tempfile

import fasttext
import numpy as np


def h(g):
    return int(hashlib.sha1(g.encode()).hexdigest()[:8], 16)


def load(path, label=None):
    op = gzip.open if path.endswith(".gz") else open
    for line in op(path, "rt", encoding="utf-8"):
        d = json.loads(line)
        g = d["id"].split("#")[0]
        yield g, label or d["label"], d["text"]


def prep(t):
    return re.sub(r"\s+", " ", t.lower()).strip()[:2000]


def auc(scores, pos):
    order = np.argsort(scores, kind="mergesort")
    s = np.asarray(scores)[order]
    p = np.asarray(pos)[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        ranks[i:j] = (i + j + 1) / 2
        i = j
    n1 = p.sum(); n0 = len(p) - n1
    return (ranks[p].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


def run(name, docs, params):
    train = [(l, t) for g, l, t in docs if h(g) % 4 != 0]
    val = [(l, t) for g, l, t in docs if h(g) % 4 == 0]
    labels = sorted({l for l, _ in train})
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for l, t in train:
            f.write(f"__label__{l} {prep(t)}\n")
    m = fasttext.train_supervised(f.name, verbose=0, thread=1, seed=0, **params)
    os.unlink(f.name)
    probs = []
    for _, t in val:
        ls, ps = m.predict(prep(t), k=-1)
        d = dict(zip((x[9:] for x in ls), ps))
        probs.append([d.get(l, 0.0) for l in labels])
    probs = np.array(probs)
    y = np.array([labels.index(l) for l, _ in val])
    pred = probs.argmax(1)
    f1s = []
    for k in range(len(labels)):
        tp = ((pred == k) & (y == k)).sum(); fp = ((pred == k) & (y != k)).sum(); fn = ((pred != k) & (y == k)).sum()
        pr = tp / (tp + fp) if tp + fp else 0; rc = tp / (tp + fn) if tp + fn else 0
        f1s.append(2 * pr * rc / (pr + rc) if pr + rc else 0)
    out = {"task": name, "params": params, "val_docs": len(val), "accuracy": float((pred == y).mean()), "macro_f1": float(np.mean(f1s))}
    if len(labels) == 2:
        k = labels.index("hq") if "hq" in labels else 0
        out["auc_" + labels[k]] = float(auc(probs[:, k], y == k))
    print(json.dumps(out))


shared, web = sys.argv[1], sys.argv[2]
data = os.path.join(shared, "data/classifiers")
quality = list(load(os.path.join(data, "quality-hq-train.jsonl.gz")))
quality += [d for d in load(web, "web") if h(d[0]) % 5 != 0]
topic = [d for t in ["general", "math", "code", "multilingual"] for d in load(os.path.join(data, f"topic-{t}-train.jsonl.gz"))]
for params in [{}, {"epoch": 25, "lr": 0.5, "wordNgrams": 2, "dim": 100}]:
    run("quality", quality, params)
    run("topic", topic, params)
