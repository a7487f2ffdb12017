#!/usr/bin/env bash
# Trains the MiniLM topic and quality heads on ../shared/data/classifiers (train files only) and
# prints their validation metrics (groups with sha1(group) % 4 == 0 held out, as the data README
# says). Usage: scripts/train_onnx_classifiers.sh OUT_DIR [CURATE_BIN]
# Needs ORT_DYLIB_PATH (libonnxruntime.so of the onnxruntime wheel) and python3 (stdlib only,
# to gather the web negatives into one JSONL file).
set -euo pipefail
out=${1:?usage: $0 OUT_DIR [CURATE_BIN]}
curate=${2:-curate}
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${CURATE_SHARED:-$here/../shared}
data=$shared/data/classifiers
encoder=$shared/data/models/all-minilm-l6-v2-int8
mkdir -p "$out"

# Web text (the quality negatives): the extracted WARC pages and the CleanEval gold texts
# (URL header and <p>/<h>/<l> markers removed). Their test split (sha1(id) % 5 == 0) is dropped
# by --exclude-test below.
python3 - "$shared" "$out/web.jsonl" <<'PY'
import gzip, json, os, sys
shared, dst = sys.argv[1], sys.argv[2]
with open(dst, "w") as out:
    with gzip.open(os.path.join(shared, "data/corpora/warc-extracted-texts.jsonl.gz"), "rt") as f:
        for line in f:
            d = json.loads(line)
            out.write(json.dumps({"id": d["id"], "text": d["text"]}) + "\n")
    gold = os.path.join(shared, "data/extraction/cleaneval-final/gold")
    for name in sorted(os.listdir(gold)):
        raw = gzip.open(os.path.join(gold, name), "rb").read().decode("utf-8", "replace")
        lines = [l for l in raw.splitlines() if not l.startswith("URL:")]
        text = "\n".join(l.replace("<p>", " ").replace("<h>", " ").replace("<l>", " ") for l in lines)
        out.write(json.dumps({"id": "cleaneval/" + name, "text": text}) + "\n")
PY

"$curate" train head --encoder "$encoder" --out "$out/minilm-topic" \
  --input "$data/topic-general-train.jsonl.gz" --input "$data/topic-math-train.jsonl.gz" \
  --input "$data/topic-code-train.jsonl.gz" --input "$data/topic-multilingual-train.jsonl.gz" \
  "${@:3}" | tee "$out/topic.txt"
"$curate" train head --encoder "$encoder" --out "$out/minilm-quality" --exclude-test \
  --input "$data/quality-hq-train.jsonl.gz" --input "web=$out/web.jsonl" \
  "${@:3}" | tee "$out/quality.txt"
