"""
The reward model of RLHF: Bradley-Terry on the DPO pairs, from the SFT checkpoint.

What it does: loads the SFT model, puts a scalar head on its transformer in place of the vocabulary
head (gpt_mini/reward_model.py), and trains it on data/dpo_train.jsonl, the very pairs DPO learns
from, to score each chosen reply above its rejected one:
    loss = -log sigmoid(r(x, y_w) - r(x, y_l))        (Bradley-Terry; Ouyang et al. 2022, Eq. 1)
Every --eval-every steps it reports TRL's RewardTrainer metrics on the held-out pairs
(data/dpo_val.jsonl): accuracy (a tie counts as wrong), margin r_w - r_l, mean reward.
Writes runs/reward_model/: model.pt, metrics.jsonl, curves.png, summary.json. Not part of
run_all.py: the RLHF side of the DPO-vs-RLHF comparison uses it.

Default loss and schedule: that loss, AdamW (weight decay 0.1 on matrices), 300 steps of 16 pairs,
lr 1e-4 after 20 warm-up steps, cosine decay to a tenth. The head starts at zero, so the step-0
loss is log 2 and the accuracy 0 (every pair a tie).

What it simplifies: the reward is read at the reply's last token only; no reward centring, no
margin term; pairs drawn at random each step.

Run it:
    python train_reward_model.py              # about 2 minutes on a 2-core CPU
    python train_reward_model.py --quick
"""

import torch

from gpt_mini import checkpoint, cli, data, evaluate, layout, optim, report, runlog, runtime
from gpt_mini.reward_model import RewardModel, bradley_terry_loss, held_out_metrics, pair_rewards, reward_metrics
from gpt_mini.tokenizer import load_tokenizer

# ----------------------------------------------------------------------------- arguments
parser = cli.stage_parser(__doc__, layout.REWARD_MODEL, steps=300, batch_size=16, batch_unit="pairs", lr=1e-4,
                          warmup=20, eval_every=50)
args = cli.parse(parser, steps=20, batch_size=8, eval_every=10, eval_limit=16)
cli.prepare_out_dir(args.out)
device = runtime.pick_device(args.device)
runtime.seed_everything(args.seed)

# ----------------------------------------------------------------------------- load: the SFT model, a new head
enc = load_tokenizer()
model = RewardModel(checkpoint.model_from_checkpoint(checkpoint.load_init(args.init, ["sft"], device), device))
model = model.to(device)
optimizer = optim.make_optimizer(model, args.lr)

# ----------------------------------------------------------------------------- data: the DPO pairs
train_set = data.encode_pairs(enc, args.data or data.data_path("dpo_train.jsonl"), model.config.block_size)
val_set = data.encode_pairs(enc, data.data_path("dpo_val.jsonl"), model.config.block_size,
                           limit=args.eval_limit and 4 * args.eval_limit)  # --eval-limit N: N of each kind
print(f"pairs: {train_set.summary()}; held-out: {val_set.summary()}")
pad = data.pad_id(enc)


def held_out(step):
    return held_out_metrics(model, val_set.examples, pad)


# ----------------------------------------------------------------------------- loop
progress = runlog.Progress(f"{args.out}/metrics.jsonl", args.steps, "reward model", args.eval_every, held_out,
                           log_every=None, average=True, evaluate_first=True, bar=not args.no_progress,
                           line=("loss", "accuracy", "eval/loss", "eval/accuracy", "eval/margin"))
model.train()
for step in range(args.steps):
    idx = data.sample_indices(len(train_set.examples), args.batch_size, data.step_generator(args.seed, step))
    input_ids, response_mask, _ = data.pair_batch([train_set.examples[i] for i in idx], pad)  # (2B, T)
    input_ids, response_mask = input_ids.to(device), response_mask.to(device)
    optim.set_lr(optimizer, optim.lr_at(step, args.steps, args.lr, args.warmup))
    with runtime.autocast(device):
        chosen_rewards, rejected_rewards = pair_rewards(model, input_ids, response_mask)  # (B,) each
    loss = bradley_terry_loss(chosen_rewards.float(), rejected_rewards.float())
    optim.check_finite(loss, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    progress.step(step + 1, input_ids.numel(), {"loss": loss.item(),
                                                **reward_metrics(chosen_rewards, rejected_rewards)})
    if runlog.is_eval_step(step + 1, args.eval_every, args.steps):
        checkpoint.save_checkpoint(f"{args.out}/model.pt", model, layout.REWARD_MODEL, step + 1,
                                   extra={"args": vars(args), "init": args.init})
progress.close()  # training time ends here

# ----------------------------------------------------------------------------- save
report.finish_stage(layout.REWARD_MODEL, args, device, progress.throughput, {
    "data": train_set.summary(), "held_out": progress.last_eval, "metrics": evaluate.before_after_rows(
        progress.first_eval, progress.last_eval, [("held-out pair accuracy", "eval/accuracy", True),
                                                  ("held-out margin r_w - r_l", "eval/margin", False),
                                                  ("held-out Bradley-Terry loss", "eval/loss", False)])})
