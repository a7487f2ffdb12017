#!/usr/bin/env bash
# Trains the models and builds the reference that pipelines/llama3.toml names, into models/
# at the repository root (git-ignored), from the labelled data in ../shared/data:
#   models/quality.bin  fastText, labels hq / web ("would Wikipedia reference this page?")
#   models/topic.bin    fastText, labels general / math / code / multilingual
#   models/kl-ref.bin   token distribution of high-quality text, for filter.kl
#   models/kl-ref-lang/ one token distribution per language (<lang>.bin), for filter.kl's
#                       per_language
#   models/ut1-adult/   the UT1 adult domain and URL lists, from the datatrove 0.10.1 wheel
#                       (scripts/ut1_lists.py; a warning, not an error, when it cannot)
#   models/minilm-static  static embeddings distilled from the shared MiniLM, for dedup.semantic
#                         (needs ORT_DYLIB_PATH: docs/onnx.md)
# Both classifiers train without the data README's kept-aside test split (`--exclude-test`: the
# rule in src/split.rs), so figures scored on that split stay honest.
# Usage: scripts/train_models.sh [CURATE_BINARY [OUT_DIR]]   (defaults: `curate` on PATH, models)
set -euo pipefail
cd "$(dirname "$0")/.."
curate=${1:-curate}
out=${2:-models}
data=../shared/data
mkdir -p "$out"
"$curate" train fasttext --input "$data/classifiers/quality-hq-train.jsonl.gz" \
  --input-as "web=$data/corpora/warc-extracted-texts.jsonl.gz" --exclude-test --out "$out"/quality.bin
"$curate" train fasttext \
  --input "$data/classifiers/topic-general-train.jsonl.gz" \
  --input "$data/classifiers/topic-math-train.jsonl.gz" \
  --input "$data/classifiers/topic-code-train.jsonl.gz" \
  --input "$data/classifiers/topic-multilingual-train.jsonl.gz" --exclude-test --out "$out"/topic.bin
"$curate" kl-ref build --input "$data/classifiers/quality-hq-train.jsonl.gz" --out "$out"/kl-ref.bin
"$curate" kl-ref build --by-language --input "$data/classifiers/topic-multilingual-train.jsonl.gz" \
  --out "$out"/kl-ref-lang
python3 scripts/ut1_lists.py "$out/ut1-adult" \
  || echo "warning: scripts/ut1_lists.py failed: no UT1 lists in $out/ut1-adult" >&2
# Token frequencies from the classifier train files, their validation groups left out.
if [ -z "${ORT_DYLIB_PATH:-}" ]; then
  echo "ORT_DYLIB_PATH is not set: models/minilm-static not made (docs/onnx.md)" >&2
  exit 0
fi
# The same texts are the fit texts (step 5: MiniLM embeds 9,000 windows of them, about 3 minutes
# on 2 cores); docs/onnx.md measures this recipe ("fitted, class documents").
classes=()
for f in quality-hq topic-general topic-math topic-code topic-multilingual; do
  classes+=(--text "$data/classifiers/$f-train.jsonl.gz" --fit-text "$data/classifiers/$f-train.jsonl.gz")
done
"$curate" distill --encoder "$data/models/all-minilm-l6-v2-int8" --exclude-valid 4 \
  "${classes[@]}" --out "$out"/minilm-static
