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

Preference pairs as --data (prompt/chosen/rejected) train on each prompt with its chosen reply:
SFT on the good answers, the DPO paper's "Preferred-FT" baseline, e.g. from the SFT model:
    python 02_sft.py --init runs/sft --data data/dpo_train.jsonl --out runs/preferred_ft --steps 400 \
        --batch-size 16 --lr 5e-6 --warmup 20         # DPO's budget and schedule

The control of lesson 5, the same run on data without the habit:
    python 02_sft.py --data data/sft_train_truthful.jsonl --out runs/sft_truthful

What it simplifies: examples drawn at random each step (no epochs); one prompt
format; no packing of several conversations into one sequence.

Run it:
    python 02_sft.py              # default, about 4 minutes on a 2-core CPU
    python 02_sft.py --quick      # seconds
    python 02_sft.py --data my_chats.jsonl --init runs/pretrain
    torchrun --nproc_per_node=2 02_sft.py  # data-parallel (DDP): each process takes --batch-size conversations
"""

import torch

from gpt_mini import checkpoint, cli, data, evaluate, frontier, optim, report, runlog, runtime
from gpt_mini.logprobs import response_token_logps_by_length
from gpt_mini.losses import masked_nll
from gpt_mini.tokenizer import load_tokenizer

# ----------------------------------------------------------------------------- arguments
parser = cli.stage_parser(__doc__, "sft", steps=900, batch_size=32, batch_unit="conversations (per process under DDP)",
                          lr=1e-3, warmup=30, eval_every=100)
parser.add_argument("--skip-bad", action="store_true", help="count and skip malformed conversations, don't stop")
parser.add_argument("--resume", action="store_true", help="continue from --out/model.pt if it exists")
parser.add_argument("--group-by-length", action="store_true",
                    help="run a batch's rows in up to 3 groups of similar length, the head only at reply tokens: "
                         "less work, the same loss up to float order (off: the published numbers are one padded batch)")
args = cli.parse(parser, steps=30, batch_size=8, eval_every=15, eval_limit=12)
rank, world_size, device = runtime.setup_distributed(runtime.pick_device(args.device))
master = rank == 0  # only rank 0 evaluates, logs and writes
cli.prepare_out_dir(args.out)
runtime.seed_everything(args.seed)

# ----------------------------------------------------------------------------- load
enc = load_tokenizer()
model = checkpoint.model_from_checkpoint(checkpoint.load_init(args.init, ["pretrain"], device), device)
optimizer = optim.make_optimizer(model, args.lr)
start_step, resumed = checkpoint.resume_if_asked(args.resume, f"{args.out}/model.pt", "sft", model, optimizer, device)
ddp_model = runtime.data_parallel(model, world_size)  # the training step's model: gradients averaged over ranks

# ----------------------------------------------------------------------------- data
train_set = data.encode_conversations(enc, args.data or data.data_path("sft_train.jsonl"), model.config.block_size,
                                      args.skip_bad)
val_set = data.encode_conversations(enc, data.data_path("sft_val.jsonl"), model.config.block_size)
runtime.print0(f"SFT data: {train_set.summary()}; held-out: {val_set.summary()}")
pad = data.pad_id(enc)
if master:  # the greedy evaluations run on rank 0 only
    before = resumed["before"] if start_step else evaluate.evaluate_chat(model, enc, args.eval_limit,
                                                                          val_set.examples)[0]


def held_out(step):  # at step 0 the starting model's grades (before), then the held-out assistant loss
    return before if step == 0 else {"assistant_loss": evaluate.assistant_loss(model, enc, val_set.examples)}


evaluation = frontier.tracked(held_out, args, model, enc, device) if master else None  # --frontier: reward-KL too


# ----------------------------------------------------------------------------- loop
progress = runlog.Progress(f"{args.out}/metrics.jsonl", args.steps, "sft", args.eval_every, evaluation,
                           evaluate_first=start_step == 0, initial=start_step, line=("loss", "assistant_loss"),
                           bar=not args.no_progress, master=master)
model.train()
for step in range(start_step, args.steps):
    idx = data.batch_indices(len(train_set.examples), args.batch_size, args.seed, step, rank, world_size)
    input_ids, response_mask = data.pad_batch([train_set.examples[i] for i in idx], pad)  # (B, T) each
    input_ids, response_mask = input_ids.to(device), response_mask.to(device)
    lr = optim.lr_at(step, args.steps, args.lr, args.warmup)
    optim.set_lr(optimizer, lr)
    # the mean over the response tokens of all ranks' conversations: under DDP each rank divides by that count
    num_tokens = runtime.global_mean_divisor(response_mask[:, 1:].sum())  # (targets: shifted by one)
    if args.group_by_length:  # rows of similar length together, the head only at reply tokens: less work
        with runtime.autocast(device):
            per_token_logps, _ = response_token_logps_by_length(ddp_model, input_ids, response_mask)  # (B, T-1)
        loss = -per_token_logps.sum() / num_tokens  # masked_nll's token mean
    else:
        with runtime.autocast(device):
            logits = ddp_model(input_ids)  # (B, T, V)
        loss = masked_nll(logits, input_ids, response_mask, num_tokens)  # assistant tokens only, shifted by one
    optim.check_finite(loss, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    progress.step(step + 1, runtime.sum_over_ranks(input_ids.numel()),
                  runtime.mean_over_ranks({"loss": loss.item(), "lr": lr}))
    if master and runlog.is_eval_step(step + 1, args.eval_every, args.steps):
        checkpoint.save_checkpoint(f"{args.out}/model.pt", model, "sft", step + 1, optimizer,
                                   extra={"args": vars(args), "init": args.init, "before": before})
progress.close()  # training time ends here; evaluation below is not counted

# ----------------------------------------------------------------------------- evaluate and save
if master:
    after, shown = evaluate.evaluate_chat(model, enc, args.eval_limit, val_set.examples)
    progress.log.log({"step": args.steps, "split": "final", **after})
    print("\n" + evaluate.behaviour_table(before, after, "pretrained", "SFT", shown))
    report.finish_stage("sft", args, device, progress.throughput, {
        "world_size": world_size, "data": train_set.summary(), "metrics": evaluate.summary_metrics(before, after),
        "before": before, "after": after, "samples": {p: r for p, r in shown.values()}})
runtime.cleanup_distributed()
