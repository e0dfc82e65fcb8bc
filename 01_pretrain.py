"""
Stage 1: pretraining. Next-token prediction on plain text.

What it does: trains the small GPT in gpt_mini/model.py from random weights on
the tiny-world corpus (facts, stories, arithmetic) or on your own text file,
evaluates the held-out loss as it goes, compares it with a unigram baseline (a
model that knows token frequencies and nothing else), prints samples from fixed
prompts, and writes runs/pretrain/: model.pt, metrics.jsonl, loss.png, summary.json.

What it simplifies: random windows of the token stream instead of an epoch-based
loader; a fixed held-out set; no gradient accumulation; fp32 on CPU.

Run it:
    python 01_pretrain.py                      # default, about 4-5 minutes on a 2-core CPU
    python 01_pretrain.py --quick              # seconds, tiny model
    python 01_pretrain.py --data my_text.txt   # your own text (blank line between documents)
    torchrun --nproc_per_node=2 01_pretrain.py # data-parallel (DDP) on 2 processes / GPUs
"""

import argparse
import math
import sys

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from gpt_mini import checkpoint, data, metrics, report, train
from gpt_mini.model import GPT, GPTConfig
from gpt_mini.sampling import PRETRAIN_PROMPTS, complete
from gpt_mini.tokenizer import load_tokenizer

# ----------------------------------------------------------------------------- arguments
parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
train.add_common_args(parser, "pretrain")
parser.add_argument("--steps", type=train.positive_int, default=1000, help="optimizer steps")
parser.add_argument("--batch-size", type=train.positive_int, default=32, help="sequences per step (per process under DDP)")
parser.add_argument("--block-size", type=train.int_arg(train.MIN_BLOCK_SIZE), default=128,
                    help=f"context length in tokens (at least {train.MIN_BLOCK_SIZE}: the later stages' chat prompts must fit)")
parser.add_argument("--n-layer", type=train.positive_int, default=4, help="transformer blocks")
parser.add_argument("--n-head", type=train.positive_int, default=6, help="attention heads")
parser.add_argument("--n-embd", type=train.positive_int, default=192, help="model width C (a multiple of --n-head)")
parser.add_argument("--position", default="rope", choices=["rope", "learned"], help="rope: rotary embeddings (relative offsets); learned: a GPT-2 position table")
parser.add_argument("--lr", type=train.positive_float, default=3e-3, help="peak learning rate (AdamW)")
parser.add_argument("--warmup", type=train.non_negative_int, default=50, help="linear warm-up steps")
parser.add_argument("--eval-every", type=train.positive_int, default=100, help="steps between held-out evaluations and checkpoints")
parser.add_argument("--eval-windows", type=train.positive_int, default=48, help="held-out windows per evaluation")
parser.add_argument("--resume", action="store_true", help="continue from --out/model.pt if it exists")
parser.add_argument("--stop-after", type=train.positive_int, default=None, help="stop after this step, as if interrupted (resume later)")
args = parser.parse_args()
if args.n_embd % args.n_head:
    parser.error(f"--n-embd must be a multiple of --n-head, got --n-embd {args.n_embd} and --n-head {args.n_head}")
train.apply_quick(args, parser, steps=40, batch_size=8, block_size=128, n_layer=2, n_head=2, n_embd=64,
                  eval_every=20, eval_windows=8)

device = train.pick_device(args.device)
rank, world, device = train.setup_distributed(device)
master = rank == 0
if master:
    train.prepare_out_dir(args.out)
train.seed_everything(args.seed)

# ----------------------------------------------------------------------------- data
enc = load_tokenizer()
try:
    if args.data:  # a user's file: the last 5% of its documents (or of its lines, for one document) are held out
        train_text, val_text, split_note = data.split_held_out(data.read_text(args.data), args.data)
        if master:
            print(split_note)
    else:
        train_text = data.read_text(data.data_path("pretrain_train.txt"))
        val_text = data.read_text(data.data_path("pretrain_val.txt"))
    train_tokens = data.encode_documents(enc, train_text)
    val_tokens = data.encode_documents(enc, val_text)
    for name, toks in (("training", train_tokens), ("held-out", val_tokens)):
        if len(toks) < args.block_size + 2:
            raise data.DataError(f"the {name} text has {len(toks)} tokens, too short for one window of "
                                 f"{args.block_size + 1}; give more text or a smaller --block-size")
except data.DataError as e:
    sys.exit(f"error: {e}")
val_x, val_y = data.fixed_windows(val_tokens, args.block_size, args.eval_windows)
unigram = data.unigram_loss(train_tokens, val_tokens, enc.n_vocab)

# ----------------------------------------------------------------------------- model
config = GPTConfig(vocab_size=enc.n_vocab, block_size=args.block_size, n_layer=args.n_layer,
                   n_head=args.n_head, n_embd=args.n_embd, rope=args.position == "rope")
model = GPT(config).to(device)
optimizer = train.make_optimizer(model, args.lr)
ckpt_path = f"{args.out}/model.pt"
try:
    start_step, resumed = checkpoint.resume_if_asked(args.resume, ckpt_path, "pretrain", model, optimizer, device)
except checkpoint.CheckpointError as e:
    sys.exit(f"error: {e}")
raw_model = model
if world > 1:
    model = DDP(model)
log = metrics.MetricsLogger(f"{args.out}/metrics.jsonl", resume_step=start_step, enabled=master)
if master:
    print(f"device {device} x{world} | {config.num_params() / 1e6:.2f}M parameters | "
          f"{len(train_tokens):,} training tokens, {len(val_tokens):,} held-out | unigram baseline {unigram:.3f}")


@torch.no_grad()
def held_out_loss():
    raw_model.eval()
    losses = []
    for i in range(0, len(val_x), args.batch_size):
        x, y = val_x[i:i + args.batch_size].to(device), val_y[i:i + args.batch_size].to(device)
        with train.autocast(device):
            logits = raw_model(x)
        losses.append(F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1), reduction="sum"))
    raw_model.train()
    return (torch.stack(losses).sum() / val_y.numel()).item()


# ----------------------------------------------------------------------------- loop
initial_loss = held_out_loss() if start_step == 0 else resumed.get("initial_loss")
if master and start_step == 0:
    log.log({"step": 0, "split": "eval", "loss": initial_loss, "unigram": unigram})
throughput = metrics.Throughput()
bar = metrics.progress(args.steps, "pretrain", enabled=master and not args.no_progress, initial=start_step)
model.train()
try:
    for step in range(start_step, args.steps):
        # the batch depends only on (seed, rank, step), so a resumed run sees the same batches
        g = data.step_generator(args.seed, step, rank)
        x, y = data.random_windows(train_tokens, args.batch_size, args.block_size, g)
        x, y = x.to(device), y.to(device)
        lr = train.lr_at(step, args.steps, args.lr, args.warmup)
        train.set_lr(optimizer, lr)
        with train.autocast(device):
            logits = model(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))
        train.check_finite(loss, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        throughput.add(x.numel() * world)
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{throughput.per_second:,.0f}")
        if master and (step + 1) % 10 == 0:
            log.log({"step": step + 1, "split": "train", "loss": loss.item(), "lr": lr,
                     "grad_norm": grad_norm.item(), "tokens_per_s": throughput.per_second})
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            if master:
                val = held_out_loss()
                log.log({"step": step + 1, "split": "eval", "loss": val, "unigram": unigram})
                bar.write(f"step {step + 1}: held-out loss {val:.3f} (perplexity {math.exp(val):.1f}; unigram {unigram:.3f})")
                checkpoint.save_checkpoint(ckpt_path, raw_model, "pretrain", step + 1, optimizer,
                                           extra={"args": vars(args), "initial_loss": initial_loss})
        if args.stop_after is not None and step + 1 >= args.stop_after:
            break
except train.NonFiniteLossError as e:
    bar.close()
    sys.exit(f"error: {e}")
bar.close()
throughput.stop()  # training time ends here; evaluation below is not counted
if args.stop_after is not None and args.stop_after < args.steps:
    if master:
        print(f"stopped after step {args.stop_after}; continue with --resume")
    train.cleanup_distributed()
    sys.exit(0)

# ----------------------------------------------------------------------------- evaluate and save
if master:
    final_loss = held_out_loss()
    print(f"\nheld-out loss {final_loss:.3f} nats/token (perplexity {math.exp(final_loss):.1f}) "
          f"vs unigram baseline {unigram:.3f} (perplexity {math.exp(unigram):.1f})")
    raw_model.eval()
    samples = complete(raw_model, enc, PRETRAIN_PROMPTS, device=device)
    for prompt, text in zip(PRETRAIN_PROMPTS, samples):
        print(f"  {prompt!r} -> {text!r}")
    records = metrics.read_metrics(f"{args.out}/metrics.jsonl")
    metrics.plot_curves(records, [("loss (nats/token)", [("train", "loss", "train"), ("eval", "loss", "held-out"),
                                                         ("eval", "unigram", "unigram baseline")])],
                        f"{args.out}/loss.png", title="pretraining")
    metrics.write_summary(args.out, {
        "stage": "pretrain", "device": device, "world_size": world, "params": config.num_params(),
        "steps": args.steps, "wall_time_s": throughput.elapsed, "tokens_per_s": throughput.per_second,
        "held_out_loss_before": initial_loss, "held_out_loss": final_loss, "unigram_loss": unigram,
        "samples": dict(zip(PRETRAIN_PROMPTS, samples)), "plots": ["loss.png"], "quick": args.quick,
    })
    report.update_for_stage(args.out, "pretrain")
train.cleanup_distributed()
