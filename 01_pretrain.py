"""
Stage 1: pretraining. Next-token prediction on plain text.

What it does: trains the small GPT in gpt_mini/model.py from random weights on
the tiny-world corpus (facts, stories, arithmetic) or on your own text file,
evaluates the held-out loss as it goes, compares it with a unigram baseline (a
model that knows token frequencies and nothing else), prints samples from fixed
prompts, and writes runs/pretrain/: model.pt, metrics.jsonl, loss.png, summary.json.

Default loss and schedule: next-token cross-entropy, AdamW (weight decay 0.1 on matrices,
betas 0.9/0.95), gradients clipped at 1.0, 1000 steps of 32 windows of 128 tokens, lr 3e-3
after 50 warm-up steps, cosine decay to a tenth.

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

from gpt_mini import checkpoint, cli, data, evaluate, optim, report, runlog, runtime
from gpt_mini.model import GPT, GPTConfig
from gpt_mini.sampling import PRETRAIN_PROMPTS, complete
from gpt_mini.tokenizer import load_tokenizer

# ----------------------------------------------------------------------------- arguments
parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
cli.add_common_args(parser, "pretrain")
parser.add_argument("--steps", type=cli.positive_int, default=1000, help="optimizer steps")
parser.add_argument("--batch-size", type=cli.positive_int, default=32,
                    help="sequences per step (per process under DDP)")
parser.add_argument("--block-size", type=cli.int_arg(cli.MIN_BLOCK_SIZE), default=128,
                    help=f"context length in tokens (at least {cli.MIN_BLOCK_SIZE}: the later stages' chat prompts "
                         "must fit)")
parser.add_argument("--n-layer", type=cli.positive_int, default=4, help="transformer blocks")
parser.add_argument("--n-head", type=cli.positive_int, default=6, help="attention heads")
parser.add_argument("--n-embd", type=cli.positive_int, default=192, help="model width C (a multiple of --n-head)")
parser.add_argument("--position", default="rope", choices=["rope", "learned"],
                    help="rope: rotary embeddings (relative offsets); learned: a GPT-2 position table")
parser.add_argument("--lr", type=cli.positive_float, default=3e-3, help="peak learning rate (AdamW)")
parser.add_argument("--warmup", type=cli.non_negative_int, default=50, help="linear warm-up steps")
parser.add_argument("--eval-every", type=cli.positive_int, default=100,
                    help="steps between held-out evaluations and checkpoints")
parser.add_argument("--eval-windows", type=cli.positive_int, default=48, help="held-out windows per evaluation")
parser.add_argument("--resume", action="store_true", help="continue from --out/model.pt if it exists")
parser.add_argument("--stop-after", type=cli.positive_int, default=None,
                    help="stop after this step, as if interrupted (resume later)")
args = parser.parse_args()
if args.n_embd % args.n_head:
    parser.error(f"--n-embd must be a multiple of --n-head, got --n-embd {args.n_embd} and --n-head {args.n_head}")
cli.apply_quick(args, parser, steps=40, batch_size=8, block_size=128, n_layer=2, n_head=2, n_embd=64,
                eval_every=20, eval_windows=8)

device = runtime.pick_device(args.device)
rank, world, device = runtime.setup_distributed(device)
master = rank == 0
if master:
    cli.prepare_out_dir(args.out)
runtime.seed_everything(args.seed)

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
optimizer = optim.make_optimizer(model, args.lr)
ckpt_path = f"{args.out}/model.pt"
try:
    start_step, resumed = checkpoint.resume_if_asked(args.resume, ckpt_path, "pretrain", model, optimizer, device)
except checkpoint.CheckpointError as e:
    sys.exit(f"error: {e}")
raw_model = model
if world > 1:
    model = DDP(model)
log = runlog.MetricsLogger(f"{args.out}/metrics.jsonl", resume_step=start_step, enabled=master)
if master:
    print(f"device {device} x{world} | {config.num_params() / 1e6:.2f}M parameters | "
          f"{len(train_tokens):,} training tokens, {len(val_tokens):,} held-out | unigram baseline {unigram:.3f}")

# ----------------------------------------------------------------------------- loop
if start_step == 0:
    initial_loss = evaluate.lm_loss(raw_model, val_x, val_y, args.batch_size)
else:
    initial_loss = resumed.get("initial_loss")
if master and start_step == 0:
    log.log({"step": 0, "split": "eval", "loss": initial_loss, "unigram": unigram})
progress = runlog.Progress(log, args.steps, "pretrain", enabled=master and not args.no_progress, initial=start_step)
model.train()
try:
    for step in range(start_step, args.steps):
        # the batch depends only on (seed, rank, step), so a resumed run sees the same batches
        g = data.step_generator(args.seed, step, rank)
        x, y = data.random_windows(train_tokens, args.batch_size, args.block_size, g)
        x, y = x.to(device), y.to(device)
        lr = optim.lr_at(step, args.steps, args.lr, args.warmup)
        optim.set_lr(optimizer, lr)
        with runtime.autocast(device):
            logits = model(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))  # next-token prediction
        optim.check_finite(loss, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        progress.step(step + 1, x.numel() * world, {"loss": loss.item(), "lr": lr, "grad_norm": grad_norm.item()},
                      write=(step + 1) % 10 == 0, with_throughput=True)
        if master and ((step + 1) % args.eval_every == 0 or step + 1 == args.steps):
            val = evaluate.lm_loss(raw_model, val_x, val_y, args.batch_size)
            log.log({"step": step + 1, "split": "eval", "loss": val, "unigram": unigram})
            progress.write(f"step {step + 1}: held-out loss {val:.3f} "
                           f"(perplexity {math.exp(val):.1f}; unigram {unigram:.3f})")
            checkpoint.save_checkpoint(ckpt_path, raw_model, "pretrain", step + 1, optimizer,
                                       extra={"args": vars(args), "initial_loss": initial_loss})
        if args.stop_after is not None and step + 1 >= args.stop_after:
            break
except optim.NonFiniteLossError as e:
    progress.close()
    sys.exit(f"error: {e}")
progress.close()  # training time ends here; evaluation below is not counted
if args.stop_after is not None and args.stop_after < args.steps:
    if master:
        print(f"stopped after step {args.stop_after}; continue with --resume")
    runtime.cleanup_distributed()
    sys.exit(0)

# ----------------------------------------------------------------------------- evaluate and save
if master:
    final_loss = evaluate.lm_loss(raw_model, val_x, val_y, args.batch_size)
    print(f"\nheld-out loss {final_loss:.3f} nats/token (perplexity {math.exp(final_loss):.1f}) "
          f"vs unigram baseline {unigram:.3f} (perplexity {math.exp(unigram):.1f})")
    raw_model.eval()
    samples = complete(raw_model, enc, PRETRAIN_PROMPTS, device=device)
    print("\n".join(f"  {prompt!r} -> {text!r}" for prompt, text in zip(PRETRAIN_PROMPTS, samples)))
    report.finish_stage("pretrain", args, device, progress.throughput, {
        "world_size": world, "params": config.num_params(), "held_out_loss_before": initial_loss,
        "held_out_loss": final_loss, "unigram_loss": unigram, "samples": dict(zip(PRETRAIN_PROMPTS, samples))})
runtime.cleanup_distributed()
