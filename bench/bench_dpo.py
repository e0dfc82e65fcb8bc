"""
DPO training throughput: the loop of 03_dpo.py against TRL's DPOTrainer.

Both sides train a randomly initialised model of one shape (01_pretrain.py's
defaults, the shape the SFT checkpoint that DPO starts from has): our GPT on our
side, a transformers GPT2LMHeadModel with the same vocabulary, block size,
width, depth and heads (tied embeddings, no dropout, "sdpa" attention) on TRL's.
They see the same pairs in the same order: the first --pairs pairs of
data/dpo_train.jsonl, tokenised by our tokenizer and chat template
(data.encode_pairs), shuffled once with --seed and then taken --batch-size at a
time (TRL with train_sampling_strategy="sequential").

Ours, one step, as in 03_dpo.py: pair_batch (chosen rows over rejected rows),
the rows grouped by length and each group run trimmed to its longest row
(pair_logps_by_length; --padded: one forward over the whole padded block,
pair_logps, as before that change), reference log-probs read from a cache filled
once before training (score_pairs), dpo_loss (sigmoid, beta 0.1), backward,
clip at 1.0, AdamW step, the per-step metrics as python floats.

TRL: DPOTrainer with precompute_ref_log_probs=True (its own reference cache),
loss_type sigmoid, beta 0.1, the same batch size, AdamW ("adamw_torch", betas
0.9/0.95, no weight decay, constant lr 1e-4, clip 1.0), on CPU in fp32. Two of
TRL's defaults are switched off because they would only slow it down here:
gradient_checkpointing (default True) and bf16 autocast (default True);
--trl-defaults keeps them on.

TRL tokenises strings itself. To hand it exactly our token ids, every pair is
written as space-separated token numbers ("1190 1191 57 ...") and TRL gets a
word-level tokenizer whose vocabulary is those numbers (id i <-> the word "i").

Timing: a callback at the end of each TRL step measures TRL's step time (from
the end of the previous step, so data loading and the trainer's own overhead
count), and after every --block-steps TRL steps it runs --block-steps of our
steps, timed. So the two alternate block by block in one process, and each
repeat gives one ratio (our pairs/s) / (TRL pairs/s). The first --warmup steps
of each side are not timed.

Run it (from the repository root):
    .venv/bin/python bench/bench_dpo.py            # about 1-2 minutes on 2 cores
    .venv/bin/python bench/bench_dpo.py --quick    # a smoke run of seconds
"""

import argparse
import copy
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

import common  # noqa: F401  (puts the repository on sys.path)
import torch
from common import machine, ratio_line, script_defaults, table

from gpt_mini import data, optim
from gpt_mini.losses import dpo_loss, preference_metrics
from gpt_mini.model import GPT, GPTConfig
from gpt_mini.preference import pair_logps, pair_logps_by_length, score_pairs
from gpt_mini.tokenizer import BOS, END, PAD, load_tokenizer

SHAPE = {"block_size": 256, "n_layer": 4, "n_head": 6, "n_embd": 192}
SHAPE.update({k: v for k, v in script_defaults("01_pretrain.py").items() if k in SHAPE})
DPO = {"batch_size": 16, "lr": 1e-4}
DPO.update({k: v for k, v in script_defaults("03_dpo.py").items() if k in DPO})

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
parser.add_argument("--batch-size", type=int, default=DPO["batch_size"], help="pairs per step (03_dpo.py default)")
parser.add_argument("--beta", type=float, default=0.1, help="DPO beta (sigmoid loss)")
parser.add_argument("--block-steps", type=int, default=4, help="optimizer steps per timed block")
parser.add_argument("--repeats", type=int, default=7, help="timed blocks per side")
parser.add_argument("--warmup", type=int, default=3, help="untimed steps per side before timing")
parser.add_argument("--pairs", type=int, default=None,
                    help="use the first N pairs of the data (default: just enough for every step, no reuse)")
parser.add_argument("--data", default=data.data_path("dpo_train.jsonl"), help="prompt/chosen/rejected JSONL")
parser.add_argument("--n-layer", type=int, default=SHAPE["n_layer"], help="transformer blocks (01_pretrain.py default)")
parser.add_argument("--n-head", type=int, default=SHAPE["n_head"], help="attention heads (01_pretrain.py default)")
parser.add_argument("--n-embd", type=int, default=SHAPE["n_embd"], help="model width (01_pretrain.py default)")
parser.add_argument("--block-size", type=int, default=SHAPE["block_size"],
                    help="context length (01_pretrain.py default)")
parser.add_argument("--seed", type=int, default=0, help="seed of the weights and of the pair order")
parser.add_argument("--trl-defaults", action="store_true",
                    help="leave TRL's gradient_checkpointing and bf16 at their defaults (True) "
                         "instead of switching them off")
parser.add_argument("--padded", action="store_true",
                    help="time our step as before length grouping: one forward over the whole padded block")
parser.add_argument("--quick", action="store_true", help="smoke run: tiny model, few steps")
args = parser.parse_args()
if args.quick:
    args.n_layer, args.n_head, args.n_embd, args.batch_size = 2, 2, 64, 4
    args.block_steps, args.repeats, args.warmup = 2, 2, 1

total_steps = args.warmup + args.block_steps * args.repeats
n_pairs = args.pairs or args.batch_size * total_steps

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
scratch = tempfile.mkdtemp(prefix="bench_dpo_")
os.environ.setdefault("HF_DATASETS_CACHE", os.path.join(scratch, "datasets"))

# ----------------------------------------------------------------------------- pairs, tokenised once by us
enc = load_tokenizer()
V = enc.n_vocab
bos, end, pad = (enc.encode_single_token(t) for t in (BOS, END, PAD))
examples = data.encode_pairs(enc, args.data, args.block_size).examples[:n_pairs]
if len(examples) < n_pairs:
    sys.exit(f"error: {args.data} has only {len(examples)} usable pairs, {n_pairs} needed")
random.Random(args.seed).shuffle(examples)
n_tokens = sum(2 * len(e["prompt_ids"]) + len(e["chosen_ids"]) + len(e["rejected_ids"]) for e in examples)

# ----------------------------------------------------------------------------- our side
torch.manual_seed(args.seed)
policy = GPT(GPTConfig(vocab_size=V, block_size=args.block_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd, dropout=0.0))
reference = copy.deepcopy(policy).eval().requires_grad_(False)
ref_chosen_all, ref_rejected_all, _ = score_pairs(reference, examples, pad)  # once, untimed (TRL precomputes too)
policy.train()
optimizer = optim.make_optimizer(policy, DPO["lr"], weight_decay=0.0)
ours_state = {"step": 0}


def our_step():
    """One optimizer step of 03_dpo.py's loop on the next --batch-size pairs."""
    start = (ours_state["step"] * args.batch_size) % len(examples)
    idx = list(range(start, start + args.batch_size))
    ours_state["step"] += 1
    input_ids, response_mask, _ = data.pair_batch([examples[i] for i in idx], pad)
    if args.padded:  # as before length grouping: one forward over the whole padded block
        policy_chosen, policy_rejected, _ = pair_logps(policy, input_ids, response_mask)
    else:  # as 03_dpo.py: rows grouped by length, each group trimmed to its longest row
        policy_chosen, policy_rejected = pair_logps_by_length(policy, input_ids, response_mask)
    loss, chosen_rewards, rejected_rewards = dpo_loss(
        policy_chosen, policy_rejected, ref_chosen_all[idx], ref_rejected_all[idx], args.beta)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    optimizer.step()
    return {"loss": loss.item(), **preference_metrics(chosen_rewards, rejected_rewards)}


# ----------------------------------------------------------------------------- TRL's side
trl_error = None
try:
    import datasets
    import tokenizers
    import transformers
    import trl
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast, TrainerCallback
    from trl import DPOConfig, DPOTrainer
except ImportError as e:  # optional peers: still report our own speed
    trl_error = f"could not import TRL / transformers: {e}"


def ids_to_words(ids):
    return " ".join(str(i) for i in ids)


def build_trl(callback):
    """A DPOTrainer over the same pairs, with a word-level tokenizer that maps 'i' to token id i."""
    word_level = tokenizers.Tokenizer(tokenizers.models.WordLevel({str(i): i for i in range(V)}, unk_token=str(pad)))
    word_level.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    word_tokenizer = PreTrainedTokenizerFast(tokenizer_object=word_level, bos_token=str(bos), eos_token=str(end),
                                             pad_token=str(pad), unk_token=str(pad))
    rows = [{"prompt": ids_to_words(e["prompt_ids"]) + " ",   # the space keeps prompt and answer apart
             "chosen": ids_to_words(e["chosen_ids"]),         # ends with <|end|>, TRL's eos: nothing appended
             "rejected": ids_to_words(e["rejected_ids"])} for e in examples]
    config = GPT2Config(vocab_size=V, n_positions=args.block_size, n_embd=args.n_embd, n_layer=args.n_layer,
                        n_head=args.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        tie_word_embeddings=True, use_cache=False, bos_token_id=bos, eos_token_id=end,
                        pad_token_id=pad)
    torch.manual_seed(args.seed)
    model = GPT2LMHeadModel._from_config(config, attn_implementation="sdpa")
    dpo_args = DPOConfig(
        output_dir=os.path.join(scratch, "trl"), use_cpu=True, fp16=False,
        **({} if args.trl_defaults else {"bf16": False, "gradient_checkpointing": False}),
        per_device_train_batch_size=args.batch_size, max_steps=total_steps,
        beta=args.beta, loss_type=["sigmoid"], precompute_ref_log_probs=True, max_length=args.block_size,
        learning_rate=DPO["lr"], lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        optim="adamw_torch", adam_beta1=0.9, adam_beta2=0.95, max_grad_norm=1.0,
        train_sampling_strategy="sequential", dataloader_num_workers=0, logging_steps=10 ** 6,
        save_strategy="no", report_to="none", disable_tqdm=True, seed=args.seed)
    trainer = DPOTrainer(model=model, args=dpo_args, train_dataset=datasets.Dataset.from_list(rows),
                         processing_class=word_tokenizer, callbacks=[callback])
    return trainer


# ----------------------------------------------------------------------------- the interleaved run
times = {"ours": [], "trl": []}


def run_our_block():
    start = time.perf_counter()
    for _ in range(args.block_steps):
        our_step()
    times["ours"].append(time.perf_counter() - start)


if trl_error is None:
    class Interleave(TrainerCallback):
        """Times TRL's steps; after each block of them, runs and times a block of ours."""

        def __init__(self):
            self.mark = None
            self.block = 0.0
            self.in_block = 0

        def on_train_begin(self, args_, state, control, **kwargs):
            for _ in range(args.warmup):  # our untimed warm-up
                our_step()
            self.mark = time.perf_counter()

        def on_step_end(self, args_, state, control, **kwargs):
            now = time.perf_counter()
            if state.global_step > args.warmup:
                self.block += now - self.mark
                self.in_block += 1
                if self.in_block == args.block_steps:
                    times["trl"].append(self.block)
                    self.block, self.in_block = 0.0, 0
                    run_our_block()
            self.mark = time.perf_counter()  # our block is not TRL's time

    try:
        trainer = build_trl(Interleave())
        # TRL's data collator must build exactly our rows: compare one batch
        collated = trainer.data_collator([trainer.train_dataset[i] for i in range(args.batch_size)])
        ours_ids, ours_mask, _ = data.pair_batch(examples[:args.batch_size], pad)
        trl_ids = collated["input_ids"]
        same = (trl_ids.shape == ours_ids.shape and torch.equal(trl_ids, ours_ids)
                and torch.equal(collated["completion_mask"].bool(), ours_mask.bool()))
        print(f"TRL's first batch equals ours (ids and response mask): {same}")
        trainer.train()
    except Exception as e:  # report why TRL could not run, then fall back to our numbers alone
        trl_error = f"TRL failed: {type(e).__name__}: {e}"
        times["trl"] = []

if trl_error is not None or not times["trl"]:
    times["ours"] = []
    for _ in range(args.warmup):
        our_step()
    for _ in range(args.repeats):
        run_our_block()

# ----------------------------------------------------------------------------- report
pairs_per_block = args.block_steps * args.batch_size
print(machine())
versions = f"transformers {transformers.__version__}, trl {trl.__version__}" if trl_error is None else "TRL not run"
if trl_error is None:
    versions += (" with its defaults (gradient checkpointing, bf16)" if args.trl_defaults
                 else " (gradient checkpointing and bf16 off)")
print(f"shape: V={V} T<={args.block_size} C={args.n_embd} L={args.n_layer} H={args.n_head} | batch {args.batch_size} "
      f"pairs, beta {args.beta}, sigmoid | {len(examples)} pairs, {n_tokens / (2 * len(examples)):.1f} tokens per "
      f"sequence on average | {args.block_steps} steps per block, {args.repeats} repeats | {versions}")
rows = []
ours_ps = [pairs_per_block / s for s in times["ours"]]
rows.append(["gpt_mini loop (03_dpo.py)", f"{statistics.median(ours_ps):.1f}",
             f"{1000 * statistics.median(times['ours']) / args.block_steps:.0f}"])
if times["trl"]:
    trl_ps = [pairs_per_block / s for s in times["trl"]]
    rows.append(["TRL DPOTrainer", f"{statistics.median(trl_ps):.1f}",
                 f"{1000 * statistics.median(times['trl']) / args.block_steps:.0f}"])
print()
print(table(["DPO training step", "pairs/s", "ms/step"], rows))
if times["trl"]:
    n = min(len(ours_ps), len(trl_ps))
    print(ratio_line("speed ratio ours / TRL", [o / t for o, t in zip(ours_ps[:n], trl_ps[:n])], goal=2.0))  # issue 21
else:
    print(f"no ratio: {trl_error}")
shutil.rmtree(scratch, ignore_errors=True)  # TRL's output folder and dataset cache
