"""
Stage 2: supervised fine-tuning (SFT) on chat conversations, with chain of thought.

What it does: loads the pretrained model (runs/pretrain), trains it on
conversations in the messages format (data/sft_train.jsonl, or --data FILE.jsonl)
with the loss on assistant tokens only: the chat template's response mask, shifted
by one like the targets, so the prompt and the padding never count. Default loss
and schedule: that masked cross-entropy, AdamW (weight decay 0.1), 900 steps of 32
conversations, lr 1e-3 after 30 warm-up steps, cosine decay to a tenth. Before and
after, it grades greedy replies to held-out prompts (format, facts, arithmetic
answered directly vs step by step) and prints "knows vs says" on held-out claims:
the fact asked plainly, neutral checks, and opinions (the sycophancy habit the
data carries on purpose, see data/README.md). Writes runs/sft/: model.pt,
metrics.jsonl, curves.png, summary.json.

The control of lesson 5, the same run on data without the habit:
    python 02_sft.py --data data/sft_train_truthful.jsonl --out runs/sft_truthful

What it simplifies: examples drawn at random each step (no epochs); one prompt
format; no packing of several conversations into one sequence.

Run it:
    python 02_sft.py              # default, about 4 minutes on a 2-core CPU
    python 02_sft.py --quick      # seconds
    python 02_sft.py --data my_chats.jsonl --init runs/pretrain
"""

import argparse
import sys

import torch

from gpt_mini import checkpoint, cli, data, evaluate, optim, report, runlog, runtime
from gpt_mini.losses import masked_nll
from gpt_mini.tokenizer import load_tokenizer

# ----------------------------------------------------------------------------- arguments
parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
cli.add_common_args(parser, "sft")
parser.add_argument("--init", type=cli.path_arg, default="runs/pretrain",
                    help="checkpoint (folder or file) to start from")
parser.add_argument("--steps", type=cli.positive_int, default=900, help="optimizer steps")
parser.add_argument("--batch-size", type=cli.positive_int, default=32, help="conversations per step")
parser.add_argument("--lr", type=cli.positive_float, default=1e-3, help="peak learning rate (AdamW)")
parser.add_argument("--warmup", type=cli.non_negative_int, default=30, help="linear warm-up steps")
parser.add_argument("--eval-every", type=cli.positive_int, default=100,
                    help="steps between held-out loss evaluations and checkpoints")
parser.add_argument("--eval-limit", type=cli.positive_int, default=None,
                    help="grade only the first N held-out items of each kind")
parser.add_argument("--skip-bad", action="store_true",
                    help="count and skip malformed conversations instead of stopping")
parser.add_argument("--resume", action="store_true", help="continue from --out/model.pt if it exists")
args = parser.parse_args()
cli.apply_quick(args, parser, steps=30, batch_size=8, eval_every=15, eval_limit=12)

device = runtime.pick_device(args.device)
cli.prepare_out_dir(args.out)
runtime.seed_everything(args.seed)

# ----------------------------------------------------------------------------- load
enc = load_tokenizer()
state = checkpoint.load_init(args.init, ["pretrain"], device)
model = checkpoint.model_from_checkpoint(state, device)
block_size = model.config.block_size

# ----------------------------------------------------------------------------- data
try:
    train_path = args.data or data.data_path("sft_train.jsonl")
    train_set = data.encode_conversations(enc, train_path, block_size, args.skip_bad)
    val_set = data.encode_conversations(enc, data.data_path("sft_val.jsonl"), block_size)
except data.DataError as e:
    sys.exit(f"error: {e}")
print(f"SFT data: {train_set.summary()}; held-out: {val_set.summary()}")
pad = data.pad_id(enc)

optimizer = optim.make_optimizer(model, args.lr)
try:
    start_step, resumed = checkpoint.resume_if_asked(args.resume, f"{args.out}/model.pt", "sft", model, optimizer,
                                                     device)
except checkpoint.CheckpointError as e:
    sys.exit(f"error: {e}")
log = runlog.MetricsLogger(f"{args.out}/metrics.jsonl", resume_step=start_step)

# ----------------------------------------------------------------------------- evaluate before
if start_step == 0:
    print("grading the starting model on held-out prompts ...")
    before, _ = evaluate.evaluate_chat(model, enc, args.eval_limit, val_set.examples)
    log.log({"step": 0, "split": "eval", **before})
else:
    before = resumed["before"]

# ----------------------------------------------------------------------------- loop
progress = runlog.Progress(log, args.steps, "sft", enabled=not args.no_progress, initial=start_step)
model.train()
try:
    for step in range(start_step, args.steps):
        idx = data.sample_indices(len(train_set.examples), args.batch_size, data.step_generator(args.seed, step))
        input_ids, response_mask = data.pad_batch([train_set.examples[i] for i in idx], pad)
        input_ids, response_mask = input_ids.to(device), response_mask.to(device)
        lr = optim.lr_at(step, args.steps, args.lr, args.warmup)
        optim.set_lr(optimizer, lr)
        with runtime.autocast(device):
            logits = model(input_ids)
        loss = masked_nll(logits, input_ids, response_mask)  # assistant tokens only, shifted by one
        optim.check_finite(loss, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        progress.step(step + 1, input_ids.numel(), {"loss": loss.item(), "lr": lr}, write=(step + 1) % 10 == 0)
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            val_loss = evaluate.assistant_loss(model, enc, val_set.examples)
            model.train()
            log.log({"step": step + 1, "split": "eval", "assistant_loss": val_loss})
            progress.write(f"step {step + 1}: held-out assistant loss {val_loss:.3f}")
            checkpoint.save_checkpoint(f"{args.out}/model.pt", model, "sft", step + 1, optimizer,
                                       extra={"args": vars(args), "init": args.init, "before": before})
except optim.NonFiniteLossError as e:
    progress.close()
    sys.exit(f"error: {e}")
progress.close()  # training time ends here; evaluation below is not counted

# ----------------------------------------------------------------------------- evaluate after and save
print("grading the SFT model on the same held-out prompts ...")
after, shown = evaluate.evaluate_chat(model, enc, args.eval_limit, val_set.examples)
log.log({"step": args.steps, "split": "final", **after})
print("\n" + evaluate.behaviour_tables(before, after, "pretrained", "SFT"))
print("\nsample replies:")
for kind, (prompt, reply) in shown.items():
    print(f"  [{kind}] {prompt!r} -> {reply!r}")
report.finish_stage("sft", args, device, progress.throughput, {
    "data": train_set.summary(), "metrics": evaluate.summary_metrics(before, after), "before": before, "after": after,
    "samples": {p: r for p, r in shown.values()}})
