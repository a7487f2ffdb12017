#!/usr/bin/env python3
"""Peer of benches/benches/onnx.rs: the sentence-transformers way of embedding with onnxruntime
in Python. Texts sorted by length, batches of --batch padded to their longest, truncation to
--max-length by the tokenizer, intra-op threads --threads, mean pooling + L2 norm in numpy.

usage: onnx_peer.py MODEL_DIR TEXTS.jsonl --max-length 128 --batch 32 --threads 1
Prints {"docs", "seconds", "cpu_seconds"} as JSON on its last line.
"""
import argparse
import json
import os
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("texts")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    texts = [json.loads(l)["text"] for l in open(a.texts, encoding="utf-8")]
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=a.max_length)
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(a.model, "model.onnx"), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    pad = tok.token_to_id("[PAD]") or 0

    def run():
        enc = tok.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(enc[i].ids))
        out = [None] * len(texts)
        for s in range(0, len(order), a.batch):
            idx = order[s : s + a.batch]
            n = max(len(enc[i].ids) for i in idx)
            ids = np.full((len(idx), n), pad, dtype=np.int64)
            mask = np.zeros((len(idx), n), dtype=np.int64)
            types = np.zeros((len(idx), n), dtype=np.int64)
            for r, i in enumerate(idx):
                e = enc[i]
                ids[r, : len(e.ids)] = e.ids
                mask[r, : len(e.ids)] = 1
                types[r, : len(e.ids)] = e.type_ids
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            (h,) = sess.run(None, {k: v for k, v in feeds.items() if k in names})
            m = mask[:, :, None].astype(np.float32)
            v = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
            for r, i in enumerate(idx):
                out[i] = v[r]
        return out

    run()  # warm-up (session arenas)
    t, c = time.perf_counter(), time.process_time()
    run()
    print(json.dumps({"docs": len(texts), "seconds": time.perf_counter() - t, "cpu_seconds": time.process_time() - c}))


if __name__ == "__main__":
    main()
