"""
Stage 4: reinforcement learning with verifiable rewards (RLVR), GRPO-style.

What it does: loads the DPO model (runs/dpo/beta-0.1) as the policy and a frozen
copy as the reference (the KL anchor, as in DPO). Instead of fixed preference
pairs, each step the policy answers P arithmetic prompts G times each (sampling
at temperature 1 with the KV cache); a program (gpt_mini/verifier.py) scores
each answer 1 or 0; each answer's advantage is its reward relative to its own
group, (r - mean) / (std + eps); and a clipped policy-gradient loss with a k3
KL penalty to the reference raises the log-probs of the better-than-average
answers. Every --eval-every steps it measures held-out greedy accuracy and
pass@k; before and after, it also grades what RL never trains on (facts, claims,
the separate held-out sums of 02_sft.py), to show any side effects.
Writes runs/rlvr/: model.pt, metrics.jsonl, reward.png, summary.json.

Default loss and schedule: the clipped GRPO loss below (clip 0.2) with the k3 KL penalty at
0.02, 30 steps of 16 prompts x 8 samples, 2 optimizer steps on each batch, AdamW without
weight decay, gradients clipped at 1.0, lr 3e-5 after 5 warm-up steps (--warmup), then constant.

Which GRPO: the DeepSeekMath objective (Shao et al. 2024, Eq. 3) with
  - population std in the advantage (an all-equal group gets advantage 0: no signal),
  - PPO's clipped importance ratio per token, so --inner-epochs > 1 reuses a batch safely,
  - the k3 estimator of KL(policy || reference) in the loss, coefficient --kl,
  - token-level aggregation over the whole batch (DAPO), not per-sequence means.
What it simplifies: the sampling policy is the current policy (no separate
rollout engine), one GPU/CPU process, a binary reward, no length penalty.

Run it:
    python 04_rlvr.py                     # about 5 minutes on a 2-core CPU
    python 04_rlvr.py --init runs/sft     # RL straight after SFT
    python 04_rlvr.py --quick
    python 04_rlvr.py --data my_tasks.jsonl   # {"prompt": ..., "answer": "42"} per line
"""

import argparse
import sys

import torch

from gpt_mini import checkpoint, cli, data, evaluate, optim, report, runlog, runtime
from gpt_mini.logprobs import pad_and_stack, response_token_logps
from gpt_mini.losses import group_advantages, policy_gradient_loss
from gpt_mini.sampling import generate_ids
from gpt_mini.tokenizer import END, load_tokenizer, render_prompt
from gpt_mini.verifier import reward

# ----------------------------------------------------------------------------- arguments
parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
cli.add_common_args(parser, "rlvr")
parser.add_argument("--init", type=cli.path_arg, default="runs/dpo/beta-0.1",
                    help="checkpoint to start from (also the frozen reference)")
# 30 steps: the pipeline must stay within 15 minutes on a 2-core CPU, and its task has little headroom left
parser.add_argument("--steps", type=cli.positive_int, default=30, help="RL steps (each samples a fresh batch)")
parser.add_argument("--prompts", type=cli.positive_int, default=16,
                    help="prompts per step (P); fewer makes each step noisier")
parser.add_argument("--group-size", type=cli.int_arg(2), default=8,
                    help="samples per prompt (G), at least 2: advantages compare samples of one prompt")
parser.add_argument("--temperature", type=cli.positive_float, default=1.0, help="sampling temperature, > 0")
parser.add_argument("--max-new-tokens", type=cli.positive_int, default=64, help="longest completion")
parser.add_argument("--lr", type=cli.positive_float, default=3e-5, help="learning rate (AdamW, constant after warm-up)")
parser.add_argument("--warmup", type=cli.non_negative_int, default=5, help="linear warm-up steps")
parser.add_argument("--kl", type=cli.non_negative_float, default=0.02,
                    help="coefficient of the k3 KL penalty to the reference")
parser.add_argument("--clip-eps", type=cli.positive_float, default=0.2, help="PPO clip range of the importance ratio")
parser.add_argument("--inner-epochs", type=cli.positive_int, default=2, help="optimizer steps on each sampled batch")
parser.add_argument("--eval-every", type=cli.positive_int, default=15,
                    help="steps between held-out evaluations and checkpoints")
parser.add_argument("--pass-k", type=cli.positive_int, default=8, help="k of the held-out pass@k")
parser.add_argument("--eval-limit", type=cli.positive_int, default=None, help="use only the first N held-out tasks")
args = parser.parse_args()
cli.apply_quick(args, parser, steps=6, prompts=4, group_size=4, eval_every=3, eval_limit=16, pass_k=4,
                max_new_tokens=48)

device = runtime.pick_device(args.device)
cli.prepare_out_dir(args.out)
runtime.seed_everything(args.seed)

# ----------------------------------------------------------------------------- load
enc = load_tokenizer()
state = checkpoint.load_init(args.init, ["dpo", "sft"], device)
try:
    block_size = state["model_config"]["block_size"]
    tasks = data.load_tasks(args.data or data.data_path("rlvr_train.jsonl"), enc, block_size)
    val_tasks = data.load_tasks(data.data_path("rlvr_val.jsonl"), enc, block_size)[:args.eval_limit]
except data.DataError as e:
    sys.exit(f"error: {e}")
policy = checkpoint.model_from_checkpoint(state, device)
reference = checkpoint.model_from_checkpoint(state, device)
reference.eval().requires_grad_(False)  # the KL anchor never moves
optimizer = optim.make_optimizer(policy, args.lr, weight_decay=0.0)
end_id, pad = enc.encode_single_token(END), data.pad_id(enc)
log = runlog.MetricsLogger(f"{args.out}/metrics.jsonl")
print(f"{len(tasks)} training tasks, {len(val_tasks)} held-out; "
      f"P={args.prompts} prompts x G={args.group_size} samples per step")


def held_out(step):
    """Held-out greedy accuracy, pass@k and one sample's accuracy, logged -> (scores, greedy reply to task 0)."""
    scores, example = evaluate.task_accuracy(policy, enc, val_tasks, args.pass_k, args.max_new_tokens, args.seed)
    log.log({"step": step, "split": "eval", **scores})
    return scores, example


k = f"pass@{args.pass_k}"
before, _ = held_out(0)
print(f"start: held-out greedy accuracy {before['greedy_accuracy']:.3f}, {k} {before[k]:.3f}")
# RL on sums may also move what it never trains on (facts, claims): measure that too
print("grading the start model on the other held-out behaviours (facts, claims, held-out sums) ...")
behaviour_before, _ = evaluate.evaluate_chat(policy, enc, args.eval_limit)

# ----------------------------------------------------------------------------- loop
sampler = torch.Generator(device=device).manual_seed(args.seed)
progress = runlog.Progress(log, args.steps, "rlvr", enabled=not args.no_progress, show=("reward", "kl"))
try:
    for step in range(args.steps):
        # 1. sample G completions for each of P prompts with the current policy
        picked = data.sample_indices(len(tasks), args.prompts, data.step_generator(args.seed, step))
        group_tasks = [tasks[i] for i in picked for _ in range(args.group_size)]   # P*G, grouped by prompt
        prompt_ids = [render_prompt(enc, t["prompt"]) for t in group_tasks]
        completions, finished = generate_ids(policy, prompt_ids, args.max_new_tokens, args.temperature,
                                             stop_tokens=(end_id,), generator=sampler, return_finished=True)
        # 2. score them with the verifier; advantages relative to the group
        rewards = torch.tensor([reward(enc.decode(c), t["answer"]) for c, t in zip(completions, group_tasks)])
        groups = rewards.view(args.prompts, args.group_size)
        advantages = group_advantages(groups).view(-1).to(device)  # (P*G,)
        # 3. the completion tokens (and the <|end|> that closed them) are the actions
        actions = [c + [end_id] if f else c for c, f in zip(completions, finished)]
        input_ids, mask = pad_and_stack([p + a for p, a in zip(prompt_ids, actions)],
                                        [[0] * len(p) + [1] * len(a) for p, a in zip(prompt_ids, actions)], pad)
        input_ids, mask = input_ids.to(device), mask.to(device)
        with torch.no_grad(), runtime.autocast(device):  # as the policy's pass below: equal at step 0
            ref_logps, _ = response_token_logps(reference(input_ids), input_ids, mask)    # (N, T-1)
        # 4. a few clipped policy-gradient steps on this batch
        optim.set_lr(optimizer, optim.lr_at(step, args.steps, args.lr, args.warmup, min_lr_ratio=1.0))
        for epoch in range(args.inner_epochs):
            with runtime.autocast(device):
                logits = policy(input_ids)
            logps, action_mask = response_token_logps(logits, input_ids, mask)           # (N, T-1)
            if epoch == 0:  # the policy has not moved yet: it *is* the sampling policy (ratio 1)
                old_logps = logps.detach()
            loss, stats = policy_gradient_loss(logps, old_logps, ref_logps, advantages, action_mask,
                                               args.clip_eps, args.kl)
            optim.check_finite(loss, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            optimizer.step()
        record = progress.step(step + 1, int(mask.sum()), {
            "reward": rewards.mean().item(), "reward_std": groups.std(dim=1, unbiased=False).mean().item(),
            "no_signal_groups": (groups.max(dim=1).values == groups.min(dim=1).values).float().mean().item(),
            "completion_length": sum(len(a) for a in actions) / len(actions), "loss": loss.item(), **stats}, write=True)
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            after, example = held_out(step + 1)
            progress.write(f"step {step + 1}: reward {record['reward']:.2f} | "
                           f"held-out greedy {after['greedy_accuracy']:.3f} {k} {after[k]:.3f} | kl {stats['kl']:.4f} "
                           f"clip {stats['clip_fraction']:.3f}")
            checkpoint.save_checkpoint(f"{args.out}/model.pt", policy, "rlvr", step + 1,
                                       extra={"args": vars(args), "init": args.init})
except optim.NonFiniteLossError as e:
    progress.close()
    sys.exit(f"error: {e}")
progress.close()  # training time ends here; evaluation below is not counted

# ----------------------------------------------------------------------------- evaluate and save
b, a = before["greedy_accuracy"], after["greedy_accuracy"]
print(f"\nheld-out greedy accuracy {b:.3f} -> {a:.3f} (error rate {1 - b:.3f} -> {1 - a:.3f}); "
      f"{k} {before[k]:.3f} -> {after[k]:.3f}")
print(f"  {val_tasks[0]['prompt']!r} -> {example!r}")
behaviour_after, shown = evaluate.evaluate_chat(policy, enc, args.eval_limit)
print("\nside effects on the other held-out behaviours, greedy:\n"
      + evaluate.behaviour_tables(behaviour_before, behaviour_after, "start", "RLVR"))
report.finish_stage("rlvr", args, device, progress.throughput, pass_k=args.pass_k, numbers={
    "metrics": {**{label: {"before": before[key], "after": after[key], "pct": True}
                   for label, key in (("held-out greedy accuracy", "greedy_accuracy"), (f"held-out {k}", k),
                                      ("held-out accuracy of one sample (T=1)", "sample_accuracy"))},
                **evaluate.summary_metrics(behaviour_before, behaviour_after)},
    "before": behaviour_before, "after": behaviour_after,
    "samples": {val_tasks[0]["prompt"]: example, **{p: r for p, r in shown.values()}}})
