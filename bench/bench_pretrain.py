"""
Pretraining throughput: gpt_mini's GPT against Hugging Face's GPT2LMHeadModel.

Both models get the same shape (vocabulary of our tokenizer, block size, width,
depth, heads, tied embeddings, no dropout; GPT-2 uses the "sdpa" attention), the
same batches of random token ids, the same loss code (cross-entropy on the
logits), the same AdamW (optim.make_optimizer) and gradient clipping at 1.0, as
in 01_pretrain.py. A timed block is --steps full training steps (forward,
backward, clip, optimizer step). The two models alternate block by block, and a
large fp32 matmul is timed in between as this machine's compute ceiling, so
every repeat gives two ratios measured under the same load:

    speed ratio      = (our tokens/s) / (GPT-2 tokens/s)        goal >= 1.4
    percent of peak  = (our model GFLOP/s) / (matmul GFLOP/s)  goal >= 70 %

Model FLOPs per trained token (PaLM, Chowdhery et al. 2022, appendix B):
    6 * N  +  12 * L * C * T
N counts the weights of every matmul a token goes through: L * 12 C^2 for the
blocks plus V * C for the (tied) output head; embedding lookups, LayerNorms and
biases are left out. The second term is attention's two T x T products (scores
and weighted sum), forward plus backward, counted over the full square as PaLM
does, not halved for the causal mask. The same count is used for both models.

Shape defaults are read from 01_pretrain.py's argparse defaults.

Run it (from the repository root):
    .venv/bin/python bench/bench_pretrain.py            # about 1-2 minutes on 2 cores
    .venv/bin/python bench/bench_pretrain.py --quick    # seconds, a smaller shape
"""

import argparse
import statistics

import common  # noqa: F401  (puts the repository on sys.path)
import torch
import torch.nn.functional as F
from common import interleave, machine, ratio_line, script_defaults, spread, table

from gpt_mini import optim
from gpt_mini.model import GPT, GPTConfig
from gpt_mini.tokenizer import BOS, END, PAD, load_tokenizer

DEFAULTS = {"batch_size": 32, "block_size": 128, "n_layer": 4, "n_head": 6, "n_embd": 192, "lr": 3e-3,
            "position": "rope"}
DEFAULTS.update({k: v for k, v in script_defaults("01_pretrain.py").items() if k in DEFAULTS})

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"],
                    help="sequences per step (01_pretrain.py default)")
parser.add_argument("--block-size", type=int, default=DEFAULTS["block_size"],
                    help="tokens per sequence (01_pretrain.py default)")
parser.add_argument("--n-layer", type=int, default=DEFAULTS["n_layer"],
                    help="transformer blocks (01_pretrain.py default)")
parser.add_argument("--n-head", type=int, default=DEFAULTS["n_head"], help="attention heads (01_pretrain.py default)")
parser.add_argument("--n-embd", type=int, default=DEFAULTS["n_embd"], help="model width C (01_pretrain.py default)")
parser.add_argument("--steps", type=int, default=2, help="training steps per timed block")
parser.add_argument("--repeats", type=int, default=9, help="timed blocks per contestant (order alternates)")
parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model before timing")
parser.add_argument("--peak-size", type=int, default=2048, help="side of the square fp32 matmul that measures the peak")
parser.add_argument("--peak-reps", type=int, default=3, help="matmuls per timed peak block")
parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the random batches")
parser.add_argument("--position", default=DEFAULTS["position"], choices=["rope", "learned"],
                    help="our model's positions: rope (the default model) or learned (GPT-2's scheme: the same shape)")
parser.add_argument("--quick", action="store_true", help="smoke run: tiny shape, few repeats, a few seconds")
args = parser.parse_args()
if args.quick:
    args.batch_size, args.block_size, args.n_layer, args.n_head, args.n_embd = 4, 64, 2, 2, 64
    args.steps, args.repeats, args.warmup, args.peak_size, args.peak_reps = 2, 3, 1, 512, 2

# ----------------------------------------------------------------------------- the two models
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402  (optional, benchmark-only)

enc = load_tokenizer()
V, T, C, L, H, B = enc.n_vocab, args.block_size, args.n_embd, args.n_layer, args.n_head, args.batch_size

torch.manual_seed(args.seed)
ours = GPT(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=H, n_embd=C, dropout=0.0,
                     rope=args.position == "rope"))
hf_config = GPT2Config(vocab_size=V, n_positions=T, n_embd=C, n_layer=L, n_head=H,
                       resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True, use_cache=False,
                       bos_token_id=enc.encode_single_token(BOS), eos_token_id=enc.encode_single_token(END),
                       pad_token_id=enc.encode_single_token(PAD))
theirs = GPT2LMHeadModel._from_config(hf_config, attn_implementation="sdpa")
assert theirs.config._attn_implementation == "sdpa"
assert theirs.lm_head.weight is theirs.transformer.wte.weight, "GPT-2 head should be tied"
ours.train()
theirs.train()

g = torch.Generator().manual_seed(args.seed)
pool = [torch.randint(V, (B, T + 1), generator=g) for _ in range(4)]  # the same batches for both models
batches = [(w[:, :-1].contiguous(), w[:, 1:].contiguous()) for w in pool]


def make_stepper(model, forward):
    optimizer = optim.make_optimizer(model, DEFAULTS["lr"])  # AdamW, decay on matrices, betas (0.9, 0.95)
    state = {"i": 0}

    def step():
        x, y = batches[state["i"] % len(batches)]
        state["i"] += 1
        logits = forward(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    def block():
        for _ in range(args.steps):
            step()

    return step, block


ours_step, ours_block = make_stepper(ours, lambda x: ours(x))
hf_step, hf_block = make_stepper(theirs, lambda x: theirs(input_ids=x).logits)

a = torch.randn(args.peak_size, args.peak_size)
b = torch.randn(args.peak_size, args.peak_size)


def peak_block():
    for _ in range(args.peak_reps):
        torch.mm(a, b)


# ----------------------------------------------------------------------------- measure
for _ in range(args.warmup):
    ours_step()
    hf_step()
peak_block()

print(machine())
n_ours = sum(p.numel() for p in ours.parameters())
n_hf = sum(p.numel() for p in theirs.parameters())
print(f"shape: V={V} T={T} C={C} L={L} H={H}, batch {B}, our positions {args.position} | "
      f"parameters: ours {n_ours:,}, GPT-2 {n_hf:,} (GPT-2 adds biases) | "
      f"{args.steps} steps per block, {args.repeats} repeats")

seconds = interleave({"ours": ours_block, "gpt2": hf_block, "matmul": peak_block}, args.repeats)

tokens = args.steps * B * T
n_matmul = L * 12 * C * C + V * C
flops_per_token = 6 * n_matmul + 12 * L * C * T
mm_flops = args.peak_reps * 2 * args.peak_size ** 3

tok_s = {k: [tokens / s for s in seconds[k]] for k in ("ours", "gpt2")}
gflop_s = {k: [t * flops_per_token / 1e9 for t in v] for k, v in tok_s.items()}
peak = [mm_flops / s / 1e9 for s in seconds["matmul"]]
speed_ratio = [o / h for o, h in zip(tok_s["ours"], tok_s["gpt2"])]
pct = {k: [100 * f / p for f, p in zip(gflop_s[k], peak)] for k in gflop_s}

rows = []
for name, label in (("ours", "gpt_mini GPT"), ("gpt2", "HF GPT2LMHeadModel (sdpa)")):
    rows.append([label, f"{statistics.median(tok_s[name]):,.0f}", f"{statistics.median(gflop_s[name]):.1f}",
                 f"{statistics.median(pct[name]):.0f} %"])
rows.append([f"fp32 matmul {args.peak_size}^3 (peak)", "", f"{statistics.median(peak):.1f}", "100 %"])
print()
print(table(["training step (fwd+bwd+AdamW)", "tokens/s", "GFLOP/s", "of peak"], rows))
print(f"\nFLOPs/token = 6*N + 12*L*C*T = 6*{n_matmul:,} + {12 * L * C * T:,} = {flops_per_token / 1e6:.1f} MFLOP")
print(ratio_line("speed ratio ours / GPT-2", speed_ratio, goal=1.4))  # issue 21
med, lo, hi = spread(pct["ours"])
print(f"ours, percent of matmul peak: median {med:.0f} % (min {lo:.0f}, max {hi:.0f})  goal >= 70 %: "
      f"{'met' if med >= 70 else 'NOT met'}")
print("  per repeat: " + " ".join(f"{p:.0f}" for p in pct["ours"]))
print("  tokens/s per repeat, ours: " + " ".join(f"{t:.0f}" for t in tok_s["ours"]))
print("  tokens/s per repeat, GPT-2: " + " ".join(f"{t:.0f}" for t in tok_s["gpt2"]))
