"""
Where a training step spends its time: a pretraining step and a DPO step, under torch.profiler.

Both steps are the stage scripts' own, at their default shapes: a pretraining step of
01_pretrain.py (a batch of random token windows, forward, cross-entropy, backward, clip,
AdamW) and a DPO step of 03_dpo.py (a batch of real pairs from data/dpo_train.jsonl as
pair_batch builds it, one forward for chosen and rejected, summed response log-probs,
dpo_loss against cached reference log-probs, backward, clip, AdamW). The weights are random;
the time per op does not depend on their values.

Every profiled op's own (self) CPU time is charged to the nearest enclosing thing we can name:
a layer kind in the forward pass (linear layers, attention, LayerNorm, GELU, RoPE, the loss,
the embedding), the autograd node that runs it in the backward pass (MmBackward0 is a matmul,
ScaledDotProductFlashAttentionForCpuBackward0 is attention, ...), or the optimizer and the
gradient clipping. RoPE and the loss are marked with torch.profiler.record_function around
gpt_mini's own functions; their backward is charged through the autograd nodes they create
(a multiply, a subtraction, a concatenation, a slice: "elementwise backward" below, which
also holds the residual additions). What is left (views, copies, the Python between ops)
is "other".

Run it (from the repository root):
    .venv/bin/python bench/profile_steps.py            # about a minute on 2 cores
    .venv/bin/python bench/profile_steps.py --quick    # seconds, tiny shapes
"""

import argparse
import collections
import random

import common  # noqa: F401  (puts the repository on sys.path)
import torch
import torch.nn.functional as F
from common import machine, script_defaults
from torch.profiler import ProfilerActivity, profile, record_function

import gpt_mini.logprobs as logprobs
import gpt_mini.model as model_module
from gpt_mini import data, optim
from gpt_mini.losses import dpo_loss
from gpt_mini.model import GPT, GPTConfig
from gpt_mini.tokenizer import load_tokenizer

PRETRAIN = {"batch_size": 32, "block_size": 128, "n_layer": 4, "n_head": 6, "n_embd": 192, "lr": 3e-3}
PRETRAIN.update({k: v for k, v in script_defaults("01_pretrain.py").items() if k in PRETRAIN})
DPO = {"batch_size": 16, "lr": 5e-6, "beta": 0.1}
DPO.update({k: v for k, v in script_defaults("03_dpo.py").items() if k in DPO})

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
parser.add_argument("--steps", type=int, default=10, help="profiled steps of each kind (after the warm-up)")
parser.add_argument("--warmup", type=int, default=3, help="unprofiled steps first")
parser.add_argument("--quick", action="store_true", help="smoke run: tiny shapes, 2 steps")
args = parser.parse_args()
if args.steps < 1 or args.warmup < 0:
    parser.error("--steps must be at least 1 and --warmup at least 0")
if args.quick:
    PRETRAIN.update(batch_size=4, block_size=32, n_layer=2, n_head=2, n_embd=32)
    DPO.update(batch_size=4)
    args.steps, args.warmup = 2, 1

# Mark gpt_mini's RoPE and log-prob code, so their forward time gets a name of its own.
_apply_rope = model_module.apply_rope


def _marked_rope(*a, **k):
    with record_function("rope"):
        return _apply_rope(*a, **k)


model_module.apply_rope = _marked_rope


# name of a profiled event -> category; the first match along an event's chain of parents wins
FORWARD = [("rope", "RoPE"), ("loss", "loss (cross-entropy / log-probs)"), ("clip", "gradient clipping"),
           ("Optimizer.step", "optimizer (AdamW)"), ("Optimizer.zero_grad", "optimizer (AdamW)"),
           ("aten::linear", "matmul (linear layers, head)"), ("aten::matmul", "matmul (linear layers, head)"),
           ("aten::mm", "matmul (linear layers, head)"), ("aten::addmm", "matmul (linear layers, head)"),
           ("aten::scaled_dot_product_attention", "attention (SDPA)"), ("aten::layer_norm", "LayerNorm"),
           ("aten::gelu", "GELU"), ("aten::embedding", "embedding")]
BACKWARD = {"MmBackward0": "matmul (linear layers, head)", "AddmmBackward0": "matmul (linear layers, head)",
            "ScaledDotProductFlashAttentionForCpuBackward0": "attention (SDPA)",
            "NativeLayerNormBackward0": "LayerNorm", "GeluBackward0": "GELU",
            "EmbeddingBackward0": "embedding", "NllLossBackward0": "loss (cross-entropy / log-probs)",
            "LogSoftmaxBackward0": "loss (cross-entropy / log-probs)",
            "LogsumexpBackward0": "loss (cross-entropy / log-probs)",
            "GatherBackward0": "loss (cross-entropy / log-probs)",
            "IndexPutBackward0": "loss (cross-entropy / log-probs)",
            "IndexBackward0": "loss (cross-entropy / log-probs)",
            "MulBackward0": "elementwise backward (RoPE, residual adds)",
            "SubBackward0": "elementwise backward (RoPE, residual adds)",
            "AddBackward0": "elementwise backward (RoPE, residual adds)",
            "CatBackward0": "elementwise backward (RoPE, residual adds)",
            "SliceBackward0": "elementwise backward (RoPE, residual adds)",
            "AccumulateGrad": "gradient accumulation"}
AUTOGRAD = "autograd::engine::evaluate_function: "


def category(event):
    """The category of an event: its own name, else its nearest named parent's."""
    e = event
    while e is not None:
        name = e.name
        if name.startswith(AUTOGRAD):
            node = name[len(AUTOGRAD):]
            return BACKWARD.get(node, "other backward (views, copies)")
        for prefix, label in FORWARD:
            if name.startswith(prefix):
                return label
        e = e.cpu_parent
    return "other (views, copies, Python between ops)"


def profile_step(step, steps):
    """Self CPU time per category (microseconds) over `steps` calls of step()."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    totals = collections.Counter()
    for e in prof.events():
        totals[category(e)] += e.self_cpu_time_total
    return totals


def show(title, totals, steps):
    total = sum(totals.values())
    print(f"\n{title}: {total / steps / 1000:.1f} ms of CPU time per step (self time of every op, all threads' ops "
          "counted once)")
    print(f"| {'where':<46} | {'ms / step':>9} | {'share':>6} |")
    print(f"|{'-' * 48}|{'-' * 11}|{'-' * 8}|")
    for name, us in totals.most_common():
        print(f"| {name:<46} | {us / steps / 1000:9.2f} | {100 * us / total:5.1f}% |")


def train_step(model, optimizer, loss_fn):
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn()
    loss.backward()
    with record_function("clip"):
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()


print(machine())
enc = load_tokenizer()
V = enc.n_vocab
torch.manual_seed(0)

# ----------------------------------------------------------------------------- pretraining step
B, T = PRETRAIN["batch_size"], PRETRAIN["block_size"]
pre_model = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=PRETRAIN["n_layer"], n_head=PRETRAIN["n_head"],
                          n_embd=PRETRAIN["n_embd"]))
pre_optimizer = optim.make_optimizer(pre_model, PRETRAIN["lr"])
windows = torch.randint(V, (B, T + 1), generator=torch.Generator().manual_seed(0))
x, y = windows[:, :-1].contiguous(), windows[:, 1:].contiguous()


def pretrain_loss():
    logits = pre_model(x)  # (B, T, V)
    with record_function("loss"):
        return F.cross_entropy(logits.view(-1, V), y.view(-1))


# ----------------------------------------------------------------------------- DPO step
pairs = data.encode_pairs(enc, data.data_path("dpo_train.jsonl"), PRETRAIN["block_size"]).examples
random.Random(0).shuffle(pairs)
pad = data.pad_id(enc)
dpo_model = GPT(GPTConfig(vocab_size=V, block_size=PRETRAIN["block_size"], n_layer=PRETRAIN["n_layer"],
                          n_head=PRETRAIN["n_head"], n_embd=PRETRAIN["n_embd"]))
dpo_optimizer = optim.make_optimizer(dpo_model, DPO["lr"])
batches = [data.pair_batch(pairs[i:i + DPO["batch_size"]], pad)
           for i in range(0, DPO["batch_size"] * 8, DPO["batch_size"])]
cached_ref = []  # the reference log-probs 03_dpo.py computes once before training
with torch.no_grad():
    for input_ids, mask, _ in batches:
        cached_ref.append(logprobs.sequence_logps(dpo_model(input_ids), input_ids, mask).chunk(2))
state = {"i": 0}


def dpo_step_loss():
    i = state["i"] % len(batches)
    state["i"] += 1
    input_ids, mask, _ = batches[i]  # (2B, T): chosen rows, then rejected rows
    logits = dpo_model(input_ids)
    with record_function("loss"):
        policy_chosen_logps, policy_rejected_logps = logprobs.sequence_logps(logits, input_ids, mask).chunk(2)
        ref_chosen_logps, ref_rejected_logps = cached_ref[i]
        loss, _, _ = dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps,
                              DPO["beta"])
    return loss


lengths = [int(ids.size(1)) for ids, _, _ in batches]
for _ in range(args.warmup):
    train_step(pre_model, pre_optimizer, pretrain_loss)
    train_step(dpo_model, dpo_optimizer, dpo_step_loss)
show(f"Pretraining step (01_pretrain.py shape: B={B}, T={T}, C={PRETRAIN['n_embd']}, L={PRETRAIN['n_layer']}, "
     f"H={PRETRAIN['n_head']}, V={V})",
     profile_step(lambda: train_step(pre_model, pre_optimizer, pretrain_loss), args.steps), args.steps)
show(f"DPO step (03_dpo.py: {DPO['batch_size']} pairs = {2 * DPO['batch_size']} rows, padded to the longest row: "
     f"T = {min(lengths)} to {max(lengths)} over these batches; reference log-probs cached)",
     profile_step(lambda: train_step(dpo_model, dpo_optimizer, dpo_step_loss), args.steps), args.steps)
