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

The same loop runs RLHF on the preference prompts (a user's opinion about a fact) with --reward:
grader scores each reply with the claim grader (1 if polite and the verdict is right: the true
reward, the DPO paper's "PPO-GT"), model with a learned reward model (train_reward_model.py), which
then also logs the true reward of the same samples (true_reward). The held-out evaluation always
uses the true reward.

Default loss and schedule: the clipped GRPO loss below (clip 0.2) with the k3 KL penalty at
0.02, 30 steps of 16 prompts x 8 samples, 2 optimizer steps on each batch, AdamW without
weight decay, gradients clipped at 1.0, lr 3e-5 after 5 warm-up steps (--warmup), then constant.

Which GRPO: the DeepSeekMath objective (Shao et al. 2024, Eq. 3) with
  - population std in the advantage (an all-equal group gets advantage 0: no signal),
  - PPO's clipped importance ratio per token, so --inner-epochs > 1 reuses a batch safely,
  - the k3 estimator of KL(policy || reference) in the loss, coefficient --kl,
  - token-level aggregation over the whole batch (DAPO), not per-sequence means.
What it simplifies: the sampling policy is the current policy (no separate
rollout engine), a binary reward, no length penalty.

Run it:
    python 04_rlvr.py                     # about 5 minutes on a 2-core CPU
    python 04_rlvr.py --init runs/sft     # RL straight after SFT
    python 04_rlvr.py --init runs/sft --reward model --out runs/rlhf     # RLHF with runs/reward_model
    python 04_rlvr.py --quick
    python 04_rlvr.py --data my_tasks.jsonl   # {"prompt": ..., "answer": "42"} per line
    torchrun --nproc_per_node=2 04_rlvr.py    # data-parallel (DDP): each process samples --prompts x G
"""

import torch

from gpt_mini import checkpoint, cli, data, evaluate, frontier, layout, optim, report, runlog, runtime, sampling
from gpt_mini.logprobs import prompt_reply_batch, response_token_logps
from gpt_mini.losses import group_advantages, policy_gradient_loss
from gpt_mini.rewards import SOURCES, load_prompts, make_reward, rlvr_metrics
from gpt_mini.sampling import generate_ids
from gpt_mini.tokenizer import END, load_tokenizer, render_prompt

# ----------------------------------------------------------------------------- arguments
# 30 steps: the pipeline must stay within 15 minutes on a 2-core CPU, and its task has little headroom left
parser = cli.stage_parser(__doc__, "rlvr", steps=30, lr=3e-5, warmup=5, eval_every=15)
parser.add_argument("--prompts", type=cli.positive_int, default=16,
                    help="prompts per step (P), per process under DDP; fewer: noisier")
parser.add_argument("--group-size", type=cli.int_arg(2), default=8,
                    help="samples per prompt (G), at least 2: advantages compare samples of one prompt")
parser.add_argument("--temperature", type=cli.positive_float, default=1.0, help="sampling temperature, > 0")
parser.add_argument("--max-new-tokens", type=cli.positive_int, default=64, help="longest completion")
parser.add_argument("--kl", type=cli.non_negative_float, default=0.02, help="coefficient of the k3 KL penalty")
parser.add_argument("--clip-eps", type=cli.positive_float, default=0.2, help="PPO clip range of the importance ratio")
parser.add_argument("--inner-epochs", type=cli.positive_int, default=2, help="optimizer steps on each sampled batch")
parser.add_argument("--pass-k", type=cli.positive_int, default=8, help="k of the held-out pass@k")
parser.add_argument("--reward", default="verifier", choices=SOURCES,
                    help="verifier (sums: RLVR), grader (claims, the true reward: PPO-GT), model (a learned one: RLHF)")
parser.add_argument("--reward-model", type=cli.path_arg, default=layout.stage_dir(layout.REWARD_MODEL),
                    help="the reward model that --reward model uses (train_reward_model.py)")
args = cli.parse(parser, steps=6, prompts=4, group_size=4, eval_every=3, eval_limit=16, pass_k=4, max_new_tokens=48)
rank, world_size, device = runtime.setup_distributed(runtime.pick_device(args.device))
master = rank == 0  # only rank 0 evaluates, logs and writes
cli.prepare_out_dir(args.out)
runtime.seed_everything(args.seed)

# ----------------------------------------------------------------------------- load: one checkpoint, two models
enc = load_tokenizer()
state = checkpoint.load_init(args.init, ["dpo", "sft"], device)
policy = checkpoint.model_from_checkpoint(state, device)
reference = checkpoint.model_from_checkpoint(state, device)
reference.eval().requires_grad_(False)  # the KL anchor never moves
optimizer = optim.make_optimizer(policy, args.lr, weight_decay=0.0)
ddp_policy = runtime.data_parallel(policy, world_size)  # the training step's policy: gradients averaged over ranks

# ----------------------------------------------------------------------------- data: prompts with known answers
tasks = load_prompts(args.reward, args.data, enc, policy.config.block_size)
val_tasks = load_prompts(args.reward, "val", enc, policy.config.block_size)[:args.eval_limit]
runtime.print0(f"{len(tasks)} training tasks, {len(val_tasks)} held-out; "
               f"P={args.prompts} prompts x G={args.group_size} samples per step x {world_size} process(es)")
end_id, pad = enc.encode_single_token(END), data.pad_id(enc)
score = make_reward(args.reward, pad, device, args.reward_model)  # replies -> (N,) rewards
# RL on sums may also move what it never trains on (facts, claims): grade those before and after too (rank 0)
if master:
    behaviour_before, _ = evaluate.evaluate_chat(policy, enc, args.eval_limit)


def held_out(step):
    """Held-out greedy accuracy and pass@k; the greedy reply to the first task is kept for the log."""
    scores, held_out.example = evaluate.task_accuracy(policy, enc, val_tasks, args.pass_k, args.max_new_tokens,
                                                      args.seed)
    return scores


evaluation = frontier.tracked(held_out, args, policy, enc, device) if master else None  # --frontier: reward-KL too


# ----------------------------------------------------------------------------- loop
k = f"pass@{args.pass_k}"
progress = runlog.Progress(f"{args.out}/metrics.jsonl", args.steps, "rlvr", args.eval_every, evaluation, log_every=1,
                           evaluate_first=True, show=("reward", "kl"), bar=not args.no_progress, master=master,
                           line=("reward", "true_reward", "greedy_accuracy", k, "kl", "clip_fraction"))
# one random stream for the run; under torchrun one per sample, so that any N draws the same samples
streams = sampling.SampleStreams(args.seed, device, per_sample=runtime.is_distributed())
policy.train()
for step in range(args.steps):
    # 1. sample G completions for each of P prompts with the current policy (under DDP: this rank's P prompts)
    picked = data.batch_indices(len(tasks), args.prompts, args.seed, step, rank, world_size)
    group_tasks = [tasks[i] for i in picked for _ in range(args.group_size)]   # P*G, grouped by prompt
    prompt_ids = [render_prompt(enc, t["prompt"]) for t in group_tasks]
    generator = streams.for_step(step, first_index=rank * len(prompt_ids), count=len(prompt_ids))
    completions, finished = generate_ids(policy, prompt_ids, args.max_new_tokens, args.temperature,
                                         stop_tokens=(end_id,), generator=generator, return_finished=True)
    # 2. score them (the verifier, the claim grader or a reward model); advantages relative to the group
    replies = [enc.decode(c) for c in completions]
    actions = [c + [end_id] if f else c for c, f in zip(completions, finished)]  # and the <|end|> that closed them
    group_rewards = score(replies, group_tasks, prompt_ids, actions).view(args.prompts, args.group_size)  # (P, G)
    advantages = group_advantages(group_rewards).view(-1).to(device)  # (P*G,)
    # 3. the completion tokens (and the <|end|> that closed them) are the actions
    input_ids, mask = prompt_reply_batch(prompt_ids, actions, pad)  # (N, T): prompt + actions, mask on actions
    input_ids, mask = input_ids.to(device), mask.to(device)
    with torch.no_grad(), runtime.autocast(device):  # as the policy's pass below: equal at step 0
        ref_logps, _ = response_token_logps(reference(input_ids), input_ids, mask)    # (N, T-1)
    # 4. a few clipped policy-gradient steps on this batch, a token mean over all ranks' samples
    num_tokens = runtime.global_mean_divisor(mask[:, 1:].sum())  # the actions (mask shifted by one)
    optim.set_lr(optimizer, optim.lr_at(step, args.steps, args.lr, args.warmup, min_lr_ratio=1.0))
    for epoch in range(args.inner_epochs):
        with runtime.autocast(device):
            logits = ddp_policy(input_ids)
        logps, action_mask = response_token_logps(logits, input_ids, mask)           # (N, T-1)
        if epoch == 0:  # the policy has not moved yet: it *is* the sampling policy (ratio 1)
            old_logps = logps.detach()
        loss, stats = policy_gradient_loss(logps, old_logps, ref_logps, advantages, action_mask,
                                           args.clip_eps, args.kl, num_tokens)
        optim.check_finite(loss, step)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
    progress.step(step + 1, runtime.sum_over_ranks(int(mask.sum())), runtime.mean_over_ranks(rlvr_metrics(
        group_rewards, actions, loss, stats, replies, group_tasks if args.reward == "model" else None)))
    if master and runlog.is_eval_step(step + 1, args.eval_every, args.steps):
        checkpoint.save_checkpoint(f"{args.out}/model.pt", policy, "rlvr", step + 1,
                                   extra={"args": vars(args), "init": args.init})
progress.close()  # training time ends here; evaluation below is not counted

# ----------------------------------------------------------------------------- evaluate and save
if master:
    before, after = progress.first_eval, progress.last_eval
    behaviour_after, shown = evaluate.evaluate_chat(policy, enc, args.eval_limit)
    print(f"\nheld-out greedy accuracy {before['greedy_accuracy']:.3f} -> {after['greedy_accuracy']:.3f}; "
          f"{k} {before[k]:.3f} -> {after[k]:.3f}\n  {val_tasks[0]['prompt']!r} -> {held_out.example!r}\n"
          + evaluate.behaviour_table(behaviour_before, behaviour_after, "start", "RLVR", shown))
    report.finish_stage("rlvr", args, device, progress.throughput, pass_k=args.pass_k, numbers={
        "world_size": world_size, "metrics": {**evaluate.task_rows(before, after, args.pass_k),
                                              **evaluate.summary_metrics(behaviour_before, behaviour_after)},
        "before": behaviour_before, "after": behaviour_after,
        "samples": {val_tasks[0]["prompt"]: held_out.example, **{p: r for p, r in shown.values()}}})
runtime.cleanup_distributed()
