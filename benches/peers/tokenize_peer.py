"""Python reference tokenizers for curate's parity tests and tokenization benchmark.

Usage:
  tokenize_peer.py ids   (--hf TOKENIZER_JSON | --tiktoken FILE --encoding cl100k_base) TEXTS.jsonl
      (--encoding llama3: Llama 3's pattern and special tokens, as llama-models builds them)
      prints one JSON array of token ids per input text (no BOS/EOS, special tokens as text for
      tiktoken: encode_ordinary; Hugging Face: encode(add_special_tokens=False)).
  tokenize_peer.py bench (--hf ... | --tiktoken ... --encoding ...) TEXTS.jsonl [--reps N]
      encodes every text one by one on one thread, best of N runs; prints one JSON object:
      {"system", "tokens", "bytes", "secs", "cpu_secs", "tokens_per_s"} (secs: wall; cpu_secs: the
      encoding thread's CPU time).

TEXTS.jsonl has one {"text": ...} per line. A .gz tokenizer.json is read through gzip.
tiktoken cannot download vocabularies here: the .tiktoken file is read from disk and the
encoding's pattern and special tokens come from tiktoken's own definitions (tiktoken_ext).
"""

import argparse
import gzip
import json
import os
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")


# llama-models 0.3.0, llama_models/llama3/tokenizer.py, `pat_str`.
LLAMA3_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
              r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def load(args):
    if args.hf:
        from tokenizers import Tokenizer

        raw = open(args.hf, "rb").read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        tok = Tokenizer.from_str(raw.decode("utf-8"))
        return "tokenizers", lambda t: tok.encode(t, add_special_tokens=False).ids
    import tiktoken
    import tiktoken.load
    import tiktoken_ext.openai_public as op

    ranks = tiktoken.load.load_tiktoken_bpe(args.tiktoken)
    if args.encoding == "llama3":
        # As llama-models' llama3/tokenizer.py builds it: its pattern, 256 special tokens.
        names = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                 "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
                 "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
                 "<|python_tag|>", "<|image|>"]
        names += [f"<|reserved_special_token_{2 + i}|>" for i in range(256 - len(names))]
        enc = tiktoken.Encoding("llama3", pat_str=LLAMA3_PAT, mergeable_ranks=ranks,
                                special_tokens={n: len(ranks) + i for i, n in enumerate(names)})
        return "tiktoken", enc.encode_ordinary
    op.load_tiktoken_bpe = lambda *a, **k: ranks
    params = getattr(op, args.encoding)()
    enc = tiktoken.Encoding(**params)
    return "tiktoken", enc.encode_ordinary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["ids", "bench"])
    ap.add_argument("texts")
    ap.add_argument("--hf")
    ap.add_argument("--tiktoken")
    ap.add_argument("--encoding", default="cl100k_base")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    system, encode = load(args)
    texts = [json.loads(l)["text"] for l in open(args.texts, encoding="utf-8") if l.strip()]
    if args.mode == "ids":
        out = sys.stdout
        for t in texts:
            out.write(json.dumps(encode(t)))
            out.write("\n")
        return
    best = float("inf")
    best_cpu = float("inf")
    tokens = 0
    for _ in range(args.reps):
        t0, c0 = time.perf_counter(), time.thread_time()
        tokens = 0
        for t in texts:
            tokens += len(encode(t))
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.thread_time() - c0)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    print(json.dumps({"system": system, "tokens": tokens, "bytes": nbytes, "secs": best,
                      "cpu_secs": best_cpu, "tokens_per_s": tokens / best}))


if __name__ == "__main__":
    main()
