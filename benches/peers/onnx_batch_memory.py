"""Peak memory and time of one onnxruntime session running MiniLM over the same windows in
batches of different sizes: why `curate distill` runs its teacher in batches of 32.

Usage: python benches/peers/onnx_batch_memory.py MODEL.onnx BATCH
(one batch size per process, since peak RSS only grows). Windows: 256 windows of each length
20, 24, ..., 128 tokens (7,168 in all), random ids, seeded; one intra-op thread.
"""
import resource
import sys
import time

import numpy as np
import onnxruntime as ort

model, batch = sys.argv[1], int(sys.argv[2])
so = ort.SessionOptions()
so.intra_op_num_threads = 1
so.inter_op_num_threads = 1
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
s = ort.InferenceSession(model, so)
names = [i.name for i in s.get_inputs()]
rng = np.random.default_rng(0)
t = time.time()
for length in range(20, 129, 4):
    for _ in range(256 // batch):
        ids = rng.integers(1000, 30000, size=(batch, length)).astype(np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in names:
            feed["token_type_ids"] = np.zeros_like(ids)
        s.run(None, feed)
wall = time.time() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
print(f"batch {batch}: peak RSS {peak} MB, {wall:.1f} s wall for 7,168 windows")
