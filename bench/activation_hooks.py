"""Cost of train.log_activations: one training step of a small GPT-2 with and without the
activation hooks (runner.activations), interleaved, median of 15. Run: python bench/activation_hooks.py"""

import statistics
import time

import torch
import transformers

from runner.activations import ActivationStats

torch.manual_seed(0)
torch.set_num_threads(1)
m = transformers.GPT2LMHeadModel(
    transformers.GPT2Config(vocab_size=256, n_positions=128, n_embd=128, n_layer=4, n_head=4)
)
x = torch.randint(0, 256, (16, 128))
stats = ActivationStats(m)


def step(hooks):
    t = time.perf_counter()
    if hooks:
        with stats.recording():
            out = m(input_ids=x, labels=x)
    else:
        out = m(input_ids=x, labels=x)
    out.loss.backward()
    m.zero_grad()
    if hooks:
        stats.summary()
    return time.perf_counter() - t


for _ in range(3):
    step(False)
    step(True)
off, on = [], []
for _ in range(15):
    off.append(step(False))
    on.append(step(True))
a, b = statistics.median(off), statistics.median(on)
print(
    f"GPT-2 4x128, batch 16x128, CPU 1 thread: step {a * 1000:.1f} ms without hooks, {b * 1000:.1f} ms with ({(b / a - 1) * 100:+.1f}%)"
)
