"""
Would a cheap change make a pretraining step faster? Each variant against the default, in one run.

Variants of the same step as 01_pretrain.py (its shape, random batch, cross-entropy, backward, clip,
AdamW): SDPA forced to its math kernel instead of the flash kernel, AdamW with fused=True, and, with
--compile, the model under torch.compile (the compile time is printed: it counts in a stage's wall
time). The variants run in alternating order, 2 steps per block, and the table gives each one's median
ms per step and its speed relative to the default.

Run it (from the repository root):
    .venv/bin/python bench/pretrain_variants.py             # about a minute on 2 cores
    .venv/bin/python bench/pretrain_variants.py --compile   # + torch.compile (needs a C++ compiler)
"""

import argparse
import contextlib
import statistics
import time

import common  # noqa: F401  (puts the repository on sys.path)
import torch
import torch.nn.functional as F
from common import machine, script_defaults
from torch.nn.attention import SDPBackend, sdpa_kernel

from gpt_mini import optim
from gpt_mini.model import GPT, GPTConfig
from gpt_mini.tokenizer import load_tokenizer

SHAPE = {"batch_size": 32, "block_size": 128, "n_layer": 4, "n_head": 6, "n_embd": 192, "lr": 3e-3}
SHAPE.update({k: v for k, v in script_defaults("01_pretrain.py").items() if k in SHAPE})

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
parser.add_argument("--repeats", type=int, default=6, help="timed blocks per variant (order alternates)")
parser.add_argument("--compile", action="store_true", help="add the model under torch.compile")
parser.add_argument("--quick", action="store_true", help="smoke run: tiny shape, 2 repeats")
args = parser.parse_args()
if args.repeats < 1:
    parser.error("--repeats must be at least 1")
if args.quick:
    SHAPE.update(batch_size=4, block_size=32, n_layer=2, n_head=2, n_embd=32)
    args.repeats = 2

V = load_tokenizer().n_vocab
B, T = SHAPE["batch_size"], SHAPE["block_size"]
x = torch.randint(V, (B, T), generator=torch.Generator().manual_seed(0))
y = torch.randint(V, (B, T), generator=torch.Generator().manual_seed(1))


def make(fused=False):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=SHAPE["n_layer"], n_head=SHAPE["n_head"],
                          n_embd=SHAPE["n_embd"]))
    optimizer = optim.make_optimizer(model, SHAPE["lr"])
    if fused:
        for group in optimizer.param_groups:
            group["fused"], group["foreach"] = True, None
    return model, optimizer


def stepper(model, optimizer, backend=None, forward=None):
    forward = forward or model

    def step():
        optimizer.zero_grad(set_to_none=True)
        with sdpa_kernel(backend) if backend is not None else contextlib.nullcontext():
            loss = F.cross_entropy(forward(x).view(-1, V), y.view(-1))
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return step


print(machine())
variants = {"default": stepper(*make()), "SDPA math kernel": stepper(*make(), backend=SDPBackend.MATH),
            "AdamW fused=True": stepper(*make(fused=True))}
if args.compile:
    model, optimizer = make()
    start = time.perf_counter()
    compiled = stepper(model, optimizer, forward=torch.compile(model))
    compiled()
    compiled()
    print(f"torch.compile: {time.perf_counter() - start:.1f} s for compilation and the first 2 steps")
    variants["torch.compile"] = compiled
for step in variants.values():  # warm-up
    step()
    step()
seconds = {name: [] for name in variants}
for r in range(args.repeats):
    for name in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
        start = time.perf_counter()
        variants[name]()
        variants[name]()
        seconds[name].append((time.perf_counter() - start) / 2)
base = statistics.median(seconds["default"])
print(f"shape: B={B} T={T} C={SHAPE['n_embd']} L={SHAPE['n_layer']} H={SHAPE['n_head']} V={V}, "
      f"{args.repeats} repeats of 2 steps")
for name, values in seconds.items():
    median = statistics.median(values)
    print(f"{name:<18} {1000 * median:8.1f} ms/step   {base / median:5.2f}x the default")
