#!/usr/bin/env python3
"""Builds the small ONNX test models of classifiers/testdata (run from anywhere; needs numpy,
onnx, onnxruntime and tokenizers: the test venv of .ci/requirements.txt).

Two BERT/RoBERTa-architecture encoders (embeddings, post-LayerNorm self-attention blocks with
GELU feed-forward), written node by node with onnx.helper so that no torch is needed:

- tiny-roberta-cls/: byte-level BPE tokenizer with RoBERTa's <s> ... </s>, inputs input_ids and
  attention_mask, a RoBERTa classification head on <s> (dense + tanh + out_proj) inside the
  graph: output `logits` [batch, 3] (pooling "none"). Random weights: a parity fixture.
- tiny-bert-mean/: WordPiece tokenizer (lower-cased, [CLS] ... [SEP]), inputs input_ids,
  attention_mask and token_type_ids, output `last_hidden_state` [batch, seq, 32]; a linear head
  (head.json) fitted here by logistic regression on mean-pooled, L2-normalised embeddings of
  the prose and code lines below (pooling "mean"), so it really tells prose from code.

Weights come from numpy's seeded generator, so re-running gives the same files.

With `--optimum DIR` it writes instead one RoBERTa classifier folder the way Hugging Face
`optimum` exports one (`optimum-cli export onnx --task text-classification`): `model.onnx`
(inputs input_ids and attention_mask, output `logits`), `tokenizer.json`, `config.json` with
`id2label`/`label2id`, `tokenizer_config.json` and `special_tokens_map.json`, and no curate
file (the classifiers tests build it in a temporary directory: nothing committed).
`--multi-label` marks it `problem_type: multi_label_classification` (sigmoid scores).
"""

import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

PROSE = [
    "The river rose overnight and the village woke to find the bridge under water.",
    "She walked to the market every morning to buy bread, fruit and fresh flowers.",
    "Historians still argue about why the ancient city was abandoned so suddenly.",
    "A good night's sleep helps the brain store what it learned during the day.",
    "The committee will publish its report on public transport early next year.",
    "Farmers in the valley grow apples, pears and a little wine on the hillsides.",
    "He wrote letters to his sister while he travelled across the northern islands.",
    "The museum opened a new wing devoted to paintings of the sea and its storms.",
    "Children learn languages quickly when they hear them spoken at home.",
    "The old lighthouse keeper told stories about ships lost in the winter fog.",
    "Rain fell all afternoon, and the streets emptied as people hurried inside.",
    "Our neighbours planted a garden of roses that blooms every June.",
    "The novel follows two friends who leave their town to find work in the city.",
    "Scientists observed the birds returning to the marsh earlier than usual.",
    "The festival brings musicians and dancers from many countries each summer.",
    "After dinner the family gathered by the fire to read and talk quietly.",
    "The train was late, so we waited in a small cafe near the station.",
    "Many people believe that walking in the forest lowers stress and worry.",
    "The teacher asked the students to describe their favourite place in one page.",
    "Snow covered the mountains, and the pass was closed until the spring thaw.",
    "The mayor thanked the volunteers who cleaned the beach after the storm.",
    "Her grandmother kept a diary for sixty years, writing a few lines each night.",
    "The library lends books, maps and old newspapers to anyone with a card.",
    "A gentle wind moved the boats in the harbour as the sun went down.",
]

CODE = [
    "def parse(line): return [int(x) for x in line.split(',') if x.strip()]",
    "for (int i = 0; i < n; i++) { sum += values[i] * weights[i]; }",
    "fn main() { let v: Vec<u32> = (0..10).map(|x| x * x).collect(); println!(\"{:?}\", v); }",
    "if (err != nil) { return nil, fmt.Errorf(\"open %s: %w\", path, err) }",
    "const total = items.reduce((acc, x) => acc + x.price, 0);",
    "import os, sys; paths = [p for p in sys.argv[1:] if os.path.exists(p)]",
    "public static int max(int[] a) { int m = a[0]; for (int x : a) m = Math.max(m, x); return m; }",
    "while read -r line; do echo \"${line%%:*}\"; done < /etc/passwd",
    "SELECT name, count(*) FROM users GROUP BY name HAVING count(*) > 1;",
    "let mut map = HashMap::new(); map.insert(key.clone(), value);",
    "class Stack: def __init__(self): self.items = []",
    "std::vector<int> v(n); std::sort(v.begin(), v.end());",
    "x = np.zeros((3, 4), dtype=np.float32); y = x @ w + b",
    "match token { Some(t) => tokens.push(t), None => break }",
    "func (s *Server) Close() error { s.mu.Lock(); defer s.mu.Unlock(); return s.ln.Close() }",
    "printf(\"%d %s\\n\", argc, argv[0]); return EXIT_SUCCESS;",
    "def __repr__(self): return f\"Point({self.x}, {self.y})\"",
    "assert_eq!(parse(\"1,2\"), vec![1, 2]);",
    "my @sorted = sort { $a <=> $b } @numbers;",
    "elif key in cache: return cache[key]",
    "void free_list(struct node *head) { while (head) { struct node *n = head->next; free(head); head = n; } }",
    "export function clamp(x, lo, hi) { return Math.min(hi, Math.max(lo, x)); }",
    "try: data = json.load(f) except ValueError as e: log.error(e)",
    "impl Drop for Guard { fn drop(&mut self) { self.release(); } }",
]

HIDDEN = 32
HEADS = 2
FFN = 64
LAYERS = 2
MAX_POS = 130


def train_bpe(corpus):
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=420,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tok.enable_padding(pad_id=1, pad_token="<pad>")
    tok.enable_truncation(max_length=MAX_POS - 2)
    return tok


def train_wordpiece(corpus):
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=450,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


class Graph:
    """Collects nodes and initializers of one ONNX graph."""

    def __init__(self, rng):
        self.rng = rng
        self.nodes = []
        self.inits = []
        self.n = 0

    def name(self, base):
        self.n += 1
        return f"{base}_{self.n}"

    def weight(self, name, shape, scale):
        arr = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def op(self, op_type, inputs, **attrs):
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def linear(self, x, prefix, d_in, d_out):
        w = self.weight(f"{prefix}.weight", (d_in, d_out), 1.0 / np.sqrt(d_in))
        b = self.weight(f"{prefix}.bias", (d_out,), 0.1)
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def layer_norm(self, x, prefix):
        g = self.const(f"{prefix}.gamma", (1.0 + 0.1 * self.rng.standard_normal(HIDDEN)).astype(np.float32))
        b = self.const(f"{prefix}.beta", (0.1 * self.rng.standard_normal(HIDDEN)).astype(np.float32))
        return self.op("LayerNormalization", [x, g, b], axis=-1, epsilon=1e-5)


def build_encoder(rng, vocab_size, token_types, head_labels):
    """The encoder graph; with head_labels a RoBERTa classification head on the first token."""
    g = Graph(rng)
    hd = HIDDEN // HEADS
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
    ]
    if token_types:
        inputs.append(helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "sequence"]))

    word = g.weight("embeddings.word", (vocab_size, HIDDEN), 0.5)
    pos = g.weight("embeddings.position", (MAX_POS, HIDDEN), 0.2)
    x = g.op("Gather", [word, "input_ids"], axis=0)
    # Positions 0..S-1 (right padding: real tokens get the same positions whatever the batch).
    shape = g.op("Shape", ["input_ids"])
    seq = g.op("Gather", [shape, g.const("one_idx", np.array(1, dtype=np.int64))], axis=0)
    positions = g.op("Range", [g.const("zero", np.array(0, dtype=np.int64)), seq, g.const("one", np.array(1, dtype=np.int64))])
    x = g.op("Add", [x, g.op("Gather", [pos, positions], axis=0)])
    if token_types:
        types = g.weight("embeddings.token_type", (2, HIDDEN), 0.2)
        x = g.op("Add", [x, g.op("Gather", [types, "token_type_ids"], axis=0)])
    x = g.layer_norm(x, "embeddings.ln")

    # Additive attention mask [B, 1, 1, S]: 0 for tokens, -10000 for padding.
    m = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    m = g.op("Sub", [g.const("f_one", np.array(1.0, dtype=np.float32)), m])
    m = g.op("Mul", [m, g.const("neg", np.array(-10000.0, dtype=np.float32))])
    m = g.op("Unsqueeze", [m, g.const("axes_12", np.array([1, 2], dtype=np.int64))])

    split_shape = g.const("split_shape", np.array([0, 0, HEADS, hd], dtype=np.int64))
    merge_shape = g.const("merge_shape", np.array([0, 0, HIDDEN], dtype=np.int64))
    scale = g.const("scale", np.array(1.0 / np.sqrt(hd), dtype=np.float32))
    sqrt2 = g.const("sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))
    half = g.const("half", np.array(0.5, dtype=np.float32))
    for layer in range(LAYERS):
        p = f"layer{layer}"

        def heads(t):
            return g.op("Transpose", [g.op("Reshape", [t, split_shape])], perm=[0, 2, 1, 3])

        q = heads(g.linear(x, f"{p}.q", HIDDEN, HIDDEN))
        k = heads(g.linear(x, f"{p}.k", HIDDEN, HIDDEN))
        v = heads(g.linear(x, f"{p}.v", HIDDEN, HIDDEN))
        kt = g.op("Transpose", [k], perm=[0, 1, 3, 2])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, kt]), scale]), m])
        probs = g.op("Softmax", [scores], axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, merge_shape])
        x = g.layer_norm(g.op("Add", [x, g.linear(ctx, f"{p}.o", HIDDEN, HIDDEN)]), f"{p}.ln1")
        h = g.linear(x, f"{p}.ffn1", HIDDEN, FFN)
        # Exact GELU: 0.5 x (1 + erf(x / sqrt 2)), as BERT and RoBERTa use it.
        h = g.op("Mul", [g.op("Mul", [h, half]), g.op("Add", [g.const(g.name("f1"), np.array(1.0, dtype=np.float32)), g.op("Erf", [g.op("Div", [h, sqrt2])])])])
        x = g.layer_norm(g.op("Add", [x, g.linear(h, f"{p}.ffn2", FFN, HIDDEN)]), f"{p}.ln2")

    if head_labels:
        first = g.op("Gather", [x, g.const("zero_idx", np.array(0, dtype=np.int64))], axis=1)
        t = g.op("Tanh", [g.linear(first, "classifier.dense", HIDDEN, HIDDEN)])
        logits = g.linear(t, "classifier.out_proj", HIDDEN, len(head_labels))
        g.nodes.append(helper.make_node("Identity", [logits], ["logits"]))
        outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(head_labels)])]
    else:
        g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
        outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", HIDDEN])]

    graph = helper.make_graph(g.nodes, "curate_tiny_encoder", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="curate make_test_onnx_model.py")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def mean_pooled(session, tok, texts, max_length):
    """Mean-pooled, L2-normalised last_hidden_state of texts (the encoder's own reference)."""
    tok.no_truncation()
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(texts)
    ids = np.array([e.ids for e in enc], dtype=np.int64)
    mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
    types = np.array([e.type_ids for e in enc], dtype=np.int64)
    (hidden,) = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
    m = mask[:, :, None].astype(np.float32)
    pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def fit_head(x, y, classes, rng, steps=3000, lr=0.5, l2=1e-3):
    """Multinomial logistic regression by full-batch gradient descent."""
    n, d = x.shape
    w = np.zeros((classes, d))
    b = np.zeros(classes)
    onehot = np.eye(classes)[y]
    for _ in range(steps):
        z = x @ w.T + b
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(1, keepdims=True)
        gz = (p - onehot) / n
        w -= lr * (gz.T @ x + l2 * w)
        b -= lr * gz.sum(0)
    return w.astype(np.float32), b.astype(np.float32)


def write_optimum(d, corpus, rng, multi_label):
    """A RoBERTa sequence classifier folder as `optimum` exports it (random weights)."""
    os.makedirs(d, exist_ok=True)
    bpe = train_bpe(corpus)
    # An exported tokenizer.json keeps the settings of its training (here: truncation).
    bpe.save(os.path.join(d, "tokenizer.json"))
    labels = ["negative", "neutral", "positive"]
    model = build_encoder(rng, bpe.get_vocab_size(), token_types=False, head_labels=labels)
    onnx.save(model, os.path.join(d, "model.onnx"))
    config = {
        "_name_or_path": "tiny-random-roberta",
        "architectures": ["RobertaForSequenceClassification"],
        "model_type": "roberta",
        "vocab_size": bpe.get_vocab_size(),
        "hidden_size": HIDDEN,
        "max_position_embeddings": MAX_POS,
        "type_vocab_size": 1,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "id2label": {str(i): l for i, l in enumerate(labels)},
        "label2id": {l: i for i, l in enumerate(labels)},
        "problem_type": "multi_label_classification" if multi_label else "single_label_classification",
        "transformers_version": "4.44.0",
    }
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
                "cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>"}
    tok_config = dict(specials, model_max_length=MAX_POS - 2, tokenizer_class="RobertaTokenizer",
                      add_prefix_space=False, errors="replace", trim_offsets=True)
    for name, obj in [("config.json", config), ("tokenizer_config.json", tok_config),
                      ("special_tokens_map.json", specials)]:
        with open(os.path.join(d, name), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "classifiers", "testdata"))
    ap.add_argument("--optimum", help="write one optimum-style RoBERTa classifier folder here, nothing else")
    ap.add_argument("--multi-label", action="store_true")
    args = ap.parse_args()
    import onnxruntime as ort

    corpus = PROSE + CODE
    rng = np.random.default_rng(20240601)
    if args.optimum:
        write_optimum(args.optimum, corpus, rng, args.multi_label)
        return

    # RoBERTa-style classifier with logits in the graph.
    d = os.path.join(args.out, "tiny-roberta-cls")
    os.makedirs(d, exist_ok=True)
    bpe = train_bpe(corpus)
    bpe.save(os.path.join(d, "tokenizer.json"))
    labels = ["code", "math", "prose"]
    model = build_encoder(rng, bpe.get_vocab_size(), token_types=False, head_labels=labels)
    onnx.save(model, os.path.join(d, "model.onnx"))
    with open(os.path.join(d, "curate.json"), "w") as f:
        json.dump({"labels": labels, "pooling": "none", "max_length": MAX_POS - 2, "truncation": "head"}, f, indent=2)
        f.write("\n")

    # BERT-style encoder + mean pooling + fitted linear head.
    d = os.path.join(args.out, "tiny-bert-mean")
    os.makedirs(d, exist_ok=True)
    wp = train_wordpiece(corpus)
    wp.save(os.path.join(d, "tokenizer.json"))
    model = build_encoder(rng, wp.get_vocab_size(), token_types=True, head_labels=None)
    path = os.path.join(d, "model.onnx")
    onnx.save(model, path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    x = mean_pooled(session, wp, corpus, 64).astype(np.float64)
    y = np.array([1] * len(PROSE) + [0] * len(CODE))
    w, b = fit_head(x, y, 2, rng)
    acc = float(((x @ w.T.astype(np.float64) + b).argmax(1) == y).mean())
    head_labels = ["code", "prose"]
    with open(os.path.join(d, "head.json"), "w") as f:
        json.dump({"labels": head_labels, "weight": [[float(v) for v in row] for row in w], "bias": [float(v) for v in b]}, f)
        f.write("\n")
    with open(os.path.join(d, "curate.json"), "w") as f:
        json.dump(
            {"pooling": "mean", "normalize": True, "max_length": 64, "truncation": "head", "head": "head.json"},
            f,
            indent=2,
        )
        f.write("\n")
    print(f"tiny-bert-mean head: training accuracy {acc:.3f} on {len(y)} lines")
    for name in ["tiny-roberta-cls", "tiny-bert-mean"]:
        total = sum(os.path.getsize(os.path.join(args.out, name, f)) for f in os.listdir(os.path.join(args.out, name)))
        print(f"{name}: {total} bytes")


if __name__ == "__main__":
    main()
