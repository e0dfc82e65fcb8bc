"""
Sampling throughput: GPT.generate with its KV cache against recomputing the
whole prefix for every new token (GPT.generate(..., use_cache=False)).

The batch is RLVR-like: 04_rlvr.py samples G completions for each of P prompts
(defaults 16 x 8 = 128 rows) and generates them in blocks of prompts of one
length. Here the prompts are data/rlvr_val.jsonl rendered with render_prompt;
the --prompts prompts of the most common rendered length are each repeated
--group-size times, so the batch is one (P*G, T) block without padding, as
generate_ids would pass it. The model has 01_pretrain.py's default shape and is
randomly initialised unless --init names a checkpoint. No stop tokens, so every
row gets exactly --max-new-tokens tokens (04_rlvr.py's default length), sampled
at --temperature from a generator seeded with --seed (the same seed for both
contestants).

The two contestants alternate block by block in one process; each repeat gives
one ratio (cached tokens/s) / (recomputing tokens/s). Before timing, both are
run greedily (temperature 0) on the full batch and must produce the same tokens.

Run it (from the repository root):
    .venv/bin/python bench/bench_sampling.py            # about a minute on 2 cores
    .venv/bin/python bench/bench_sampling.py --quick    # seconds
"""

import argparse
import collections
import statistics
import sys

import common  # noqa: F401  (puts the repository on sys.path)
import torch
from common import interleave, machine, ratio_line, script_defaults, table

from gpt_mini import checkpoint, data
from gpt_mini.model import GPT, GPTConfig
from gpt_mini.tokenizer import load_tokenizer, render_prompt

SHAPE = {"block_size": 128, "n_layer": 4, "n_head": 6, "n_embd": 192}
SHAPE.update({k: v for k, v in script_defaults("01_pretrain.py").items() if k in SHAPE})
RLVR = {"prompts": 16, "group_size": 8, "max_new_tokens": 64, "temperature": 1.0}
RLVR.update({k: v for k, v in script_defaults("04_rlvr.py").items() if k in RLVR})

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
parser.add_argument("--prompts", type=int, default=RLVR["prompts"], help="distinct prompts P (04_rlvr.py default)")
parser.add_argument("--group-size", type=int, default=RLVR["group_size"],
                    help="samples per prompt G (04_rlvr.py default)")
parser.add_argument("--max-new-tokens", type=int, default=RLVR["max_new_tokens"],
                    help="completion length (04_rlvr.py default)")
parser.add_argument("--temperature", type=float, default=RLVR["temperature"],
                    help="sampling temperature of the timed runs; 0 = greedy")
parser.add_argument("--repeats", type=int, default=5, help="timed generations per contestant (order alternates)")
parser.add_argument("--init", default=None,
                    help="checkpoint folder to load instead of a random model (e.g. runs/dpo/beta-0.1)")
parser.add_argument("--data", default=data.data_path("rlvr_val.jsonl"), help="prompt/answer JSONL to take prompts from")
parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and of the sampling generator")
parser.add_argument("--quick", action="store_true", help="smoke run: small batch, short completions")
args = parser.parse_args()
if args.quick:
    args.prompts, args.group_size, args.max_new_tokens, args.repeats = 2, 4, 16, 2

enc = load_tokenizer()
if args.init:
    try:
        model = checkpoint.model_from_checkpoint(checkpoint.load_checkpoint(args.init, device="cpu"), "cpu")
    except checkpoint.CheckpointError as e:
        sys.exit(f"error: {e}")
    source = args.init
else:
    torch.manual_seed(args.seed)
    model = GPT(GPTConfig(vocab_size=enc.n_vocab, **SHAPE))
    source = "random weights"
model.eval()

# ----------------------------------------------------------------------------- the batch
rendered = [render_prompt(enc, t["prompt"]) for t in data.load_tasks(args.data)]
by_length = collections.defaultdict(list)
for ids in rendered:
    by_length[len(ids)].append(ids)
length, group = max(by_length.items(), key=lambda kv: (len(kv[1]), -kv[0]))
if len(group) < args.prompts:
    sys.exit(f"error: only {len(group)} prompts share the most common length {length}; "
             f"ask for --prompts <= {len(group)}")
rows = [ids for ids in group[:args.prompts] for _ in range(args.group_size)]  # P*G rows, grouped by prompt
x = torch.tensor(rows, dtype=torch.long)
B, T = x.shape
new_tokens = min(args.max_new_tokens, model.config.block_size - T)

# ----------------------------------------------------------------------------- same tokens?
with torch.no_grad():
    greedy_cached = model.generate(x, new_tokens, temperature=0.0, use_cache=True)
    greedy_full = model.generate(x, new_tokens, temperature=0.0, use_cache=False)
identical = torch.equal(greedy_cached, greedy_full)
differing_rows = int((greedy_cached != greedy_full).any(dim=1).sum())


def contestant(use_cache):
    def run():
        g = torch.Generator().manual_seed(args.seed)
        out = model.generate(x, new_tokens, temperature=args.temperature, use_cache=use_cache, generator=g)
        assert out.shape == (B, new_tokens)
    return run


# ----------------------------------------------------------------------------- measure
seconds = interleave({"cache": contestant(True), "full": contestant(False)}, args.repeats)
tok_s = {k: [B * new_tokens / s for s in v] for k, v in seconds.items()}
ratios = [c / f for c, f in zip(tok_s["cache"], tok_s["full"])]

print(machine())
print(f"model: {source}, L={model.config.n_layer} H={model.config.n_head} C={model.config.n_embd} "
      f"V={model.config.vocab_size} | batch {B} = {args.prompts} prompts x {args.group_size}, prompt length {T}, "
      f"{new_tokens} new tokens, temperature {args.temperature:g}, seed {args.seed} | {args.repeats} repeats")
print(f"greedy tokens identical with and without the cache: {identical} "
      f"({differing_rows} of {B} rows differ)")
print()
print(table(["generate", "tokens/s", "s per batch"], [
    ["KV cache (use_cache=True)",
     f"{statistics.median(tok_s['cache']):,.0f}", f"{statistics.median(seconds['cache']):.2f}"],
    ["recompute prefix (use_cache=False)",
     f"{statistics.median(tok_s['full']):,.0f}", f"{statistics.median(seconds['full']):.2f}"],
]))
print(ratio_line("speed ratio cache / recompute", ratios, goal=15.0))  # issue 21
if not identical:
    sys.exit("error: greedy tokens differ between the cached and the recomputing generate")
