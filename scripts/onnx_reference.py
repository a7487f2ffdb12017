#!/usr/bin/env python3
"""Reference scores of an ONNX model directory, computed the plain way in Python: the whole
text tokenized by `tokenizers`, truncated (head, or head+tail), special tokens added, the graph
run by onnxruntime one text at a time (no padding), pooled, head and softmax in numpy.

curate's `classify.onnx` must give the same scores (the parity tests compare to 1e-4).

usage: onnx_reference.py MODEL_DIR TEXTS.jsonl [--max-length N] [--truncation head|head_tail]
       [--embed]   # print pooled vectors instead of scores
Prints one JSON list per input line.
"""

import argparse
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("texts")
    ap.add_argument("--max-length", type=int)
    ap.add_argument("--truncation")
    ap.add_argument("--pooling")
    ap.add_argument("--normalize", action="store_true")
    ap.add_argument("--embed", action="store_true")
    a = ap.parse_args()

    cfg_path = os.path.join(a.model, "curate.json")
    cfg = json.load(open(cfg_path)) if os.path.exists(cfg_path) else {}
    # A folder without curate.json (a Hugging Face / optimum export): what transformers reads,
    # the tokenizer's model_max_length and config.json's problem_type.
    if not cfg:
        tc_path = os.path.join(a.model, "tokenizer_config.json")
        hf_path = os.path.join(a.model, "config.json")
        if os.path.exists(tc_path) and json.load(open(tc_path)).get("model_max_length", 1 << 30) <= 1 << 20:
            cfg["max_length"] = json.load(open(tc_path))["model_max_length"]
        if os.path.exists(hf_path) and json.load(open(hf_path)).get("problem_type") == "multi_label_classification":
            cfg["activation"] = "sigmoid"
    head = json.load(open(os.path.join(a.model, cfg["head"]))) if cfg.get("head") else None
    pooling = a.pooling or cfg.get("pooling") or ("mean" if head else "none")
    normalize = a.normalize or cfg.get("normalize", False)
    max_length = a.max_length or cfg.get("max_length", 512)
    truncation = a.truncation or cfg.get("truncation", "head")

    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    added = tok.num_special_tokens_to_add(False)
    budget = max_length - added
    head_n = cfg.get("head_tokens", budget // 4)

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(a.model, "model.onnx"), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    outputs = [o.name for o in sess.get_outputs()]
    want = cfg.get("output") or ("logits" if pooling == "none" else "last_hidden_state")
    output = want if want in outputs else outputs[0]

    for line in open(a.texts, encoding="utf-8"):
        text = json.loads(line)["text"]
        enc = tok.encode(text, add_special_tokens=False)
        if len(enc.ids) > budget:
            if truncation == "head_tail":
                h = tok.encode(text, add_special_tokens=False)
                h.truncate(head_n, direction="right")
                t = tok.encode(text, add_special_tokens=False)
                t.truncate(budget - head_n, direction="left")
                enc = Encoding.merge([h, t], growing_offsets=False)
            else:
                enc.truncate(budget, direction="right")
        enc = tok.post_process(enc, None, add_special_tokens=True)
        ids = np.array([enc.ids], dtype=np.int64)
        feeds = {}
        for n in names:
            if n == "input_ids":
                feeds[n] = ids
            elif n == "attention_mask":
                feeds[n] = np.ones_like(ids)
            elif n == "token_type_ids":
                feeds[n] = np.array([enc.type_ids], dtype=np.int64)
            elif n == "position_ids":
                feeds[n] = np.arange(ids.shape[1], dtype=np.int64)[None, :]
        (out,) = sess.run([output], feeds)
        out = out.astype(np.float64)
        if pooling == "mean":
            v = out[0].mean(0)
        elif pooling == "cls":
            v = out[0][0]
        else:
            v = out[0]
        if normalize:
            v = v / max(np.linalg.norm(v), 1e-12)
        if a.embed:
            print(json.dumps([float(x) for x in v]))
            continue
        if head:
            v = np.array(head["weight"], dtype=np.float64) @ v + np.array(head["bias"], dtype=np.float64)
        if cfg.get("activation") == "sigmoid":
            s = 1 / (1 + np.exp(-v))
        else:
            e = np.exp(v - v.max())
            s = e / e.sum()
        print(json.dumps([float(x) for x in s]))


if __name__ == "__main__":
    sys.exit(main())
