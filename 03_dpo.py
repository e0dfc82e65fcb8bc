"""
Stage 3: Direct Preference Optimization (DPO, Rafailov et al. 2023).

What it does: loads the SFT checkpoint twice, once as the policy to train and
once as the reference, frozen. For each pair (prompt, chosen, rejected) it sums
the response-token log-probs under both models (response mask, shift by one)
and minimises  -log sigmoid(beta * [(log pi(chosen) - log ref(chosen)) - (log pi(rejected) - log ref(rejected))]).

Default loss and schedule: exactly that loss and nothing else (pure DPO, Eq. 7 of
the paper: sigmoid, beta 0.1, no label smoothing, --rpo-alpha 0), AdamW without
weight decay, 400 steps of 16 pairs, lr 5e-6 after 20 warm-up steps, cosine decay
to a tenth. (--rpo-alpha adds an NLL term on the chosen replies; lesson 5 shows
why the default does without it, and what a larger lr breaks.)

Every --eval-every steps it logs TRL's metrics on the training stream and on the
held-out pairs (eval/...): loss, rewards/chosen, rewards/rejected,
rewards/margins, rewards/accuracies, logps/chosen, logps/rejected, the mean
|log pi - log ref| per response token (abs_logratio) and, on the held-out
pairs, the token KL to the reference (eval/kl). Before and after, it grades greedy replies to
held-out prompts, and prints "knows vs says": does the model know the fact
(the plain question), can it check a neutral statement, and what does it say
when a user states an opinion (agrees with false claims, corrects them,
confirms true ones, in training and in held-out wordings; rude replies).
At the end it draws, for three held-out pairs, log pi - log ref for every
response token (token_logratios.png): where DPO moved the model.

Each beta writes its own folder, runs/dpo/beta-<beta>/, so reruns never
overwrite each other; several betas in one command run this script once per
beta (a sweep) and draw runs/dpo/beta_sweep.png.

What it simplifies: the reference log-probs are computed once before training
(the reference is frozen, so this is exact; --live-reference recomputes them);
pairs are drawn at random each step; no gradient accumulation.

Run it:
    python 03_dpo.py                              # beta 0.1, about 1 minute on a 2-core CPU
    python 03_dpo.py --beta 0.5                   # change beta and rerun
    python 03_dpo.py --beta 0.01 0.1 0.5 1.0      # the sweep + comparison figure
    python 03_dpo.py --loss simpo --beta 2        # reference-free variants: simpo (--simpo-gamma), orpo
    python 03_dpo.py --quick
    python 03_dpo.py --data my_pairs.jsonl        # prompt/chosen/rejected, strings or message lists
    python 03_dpo.py --data hh_pairs.json         # a JSON array; chosen/rejected as whole conversations
    torchrun --nproc_per_node=2 03_dpo.py         # data-parallel (DDP): each process takes --batch-size pairs
"""

import sys

import torch

from gpt_mini import checkpoint, cli, data, evaluate, frontier, layout, optim, report, runlog, runtime, sweep
from gpt_mini.losses import PREFERENCE_LOSSES, chosen_nll, dpo_loss, preference_loss
from gpt_mini.preference import (
    held_out_metrics,
    held_out_rows,
    logratio_views,
    pair_logps,
    pair_logps_by_length,
    score_pairs,
    train_metrics,
)
from gpt_mini.tokenizer import load_tokenizer

# ----------------------------------------------------------------------------- arguments
parser = cli.stage_parser(__doc__, "dpo", steps=400, batch_size=16, batch_unit="pairs (per process under DDP)",
                          lr=5e-6, warmup=20, eval_every=100)
parser.add_argument("--beta", type=cli.positive_float, nargs="+", default=[layout.DEFAULT_BETA],
                    help="KL strength, > 0; several values run the script once per value (a sweep)")
parser.add_argument("--loss", default="sigmoid", choices=PREFERENCE_LOSSES, help="DPO's sigmoid, or a variant")
parser.add_argument("--simpo-gamma", type=cli.non_negative_float, default=0.5, help="SimPO's target margin gamma")
parser.add_argument("--label-smoothing", type=cli.float_arg(0, 0.5, high_open=True), default=0.0,
                    help="epsilon of conservative DPO, in [0, 0.5) (sigmoid loss only)")
parser.add_argument("--rpo-alpha", type=cli.non_negative_float, default=0.0,
                    help="weight of an NLL term on the chosen response (RPO); 0 is pure DPO")
parser.add_argument("--live-reference", action="store_true", help="run the reference every step, not from a cache")
parser.add_argument("--group-by-length", action="store_true",
                    help="score a batch's rows in up to 3 groups of similar length: less padding, the same "
                         "log-probs up to float order (off: the published numbers are one padded block)")
args = cli.parse(parser, steps=40, batch_size=8, eval_every=20, eval_limit=16)
if args.label_smoothing and args.loss != "sigmoid":
    parser.error(f"--label-smoothing applies to --loss sigmoid only, "
                 f"got --loss {args.loss} with --label-smoothing {args.label_smoothing:g}")
if len(args.beta) > 1:  # a sweep: this script once per beta, each into its own folder
    sys.exit(sweep.run_sweep(__file__, args.beta))
beta = args.beta[0]
rank, world_size, device = runtime.setup_distributed(runtime.pick_device(args.device))
master = rank == 0  # only rank 0 evaluates, logs and writes
out_dir = cli.prepare_out_dir(layout.beta_dir(args.out, beta))
runtime.seed_everything(args.seed)

# ----------------------------------------------------------------------------- load: one checkpoint, two models
enc = load_tokenizer()
sft_state = checkpoint.load_init(args.init, ["sft"], device)
policy = checkpoint.model_from_checkpoint(sft_state, device)
reference = checkpoint.model_from_checkpoint(sft_state, device)
reference.eval().requires_grad_(False)  # frozen: never trained, never in train mode
optimizer = optim.make_optimizer(policy, args.lr, weight_decay=0.0)
ddp_policy = runtime.data_parallel(policy, world_size)  # the training step's policy: gradients averaged over ranks

# ----------------------------------------------------------------------------- data
train_set = data.encode_pairs(enc, args.data or data.data_path("dpo_train.jsonl"), policy.config.block_size)
val_set = data.encode_pairs(enc, data.data_path("dpo_val.jsonl"), policy.config.block_size,
                           limit=args.eval_limit and 4 * args.eval_limit)  # --eval-limit N: N of each kind
runtime.print0(f"pairs: {train_set.summary()}; held-out: {val_set.summary()}")
pad = data.pad_id(enc)
# The reference is frozen, so its log-probs are fixed numbers: compute them once. Each is computed at the
# precision its policy pass runs at (bf16 autocast on CUDA in the loop, fp32 in the held-out metrics),
# so that at step 0, where policy = reference, the two agree. Under DDP the ranks share the work.
with runtime.autocast(device):
    ref_chosen_all, ref_rejected_all, _ = score_pairs(reference, train_set.examples, pad, split_over_ranks=True)
if master:  # the held-out metrics and the greedy evaluations run on rank 0 only
    val_ref = score_pairs(reference, val_set.examples, pad)
    before, _ = evaluate.evaluate_chat(reference, enc, args.eval_limit)  # the SFT model's replies, graded


def held_out(step):
    return held_out_metrics(policy, reference, val_set.examples, val_ref, pad, beta, args.loss, args.label_smoothing,
                            args.simpo_gamma)


evaluation = frontier.tracked(held_out, args, policy, enc, device) if master else None  # --frontier: reward-KL too


# ----------------------------------------------------------------------------- loop
progress = runlog.Progress(f"{out_dir}/metrics.jsonl", args.steps, f"dpo beta={beta:g}", args.eval_every, evaluation,
                           log_every=None, average=True, evaluate_first=True, bar=not args.no_progress, master=master,
                           line=(
                               "loss", "rewards/margins", "rewards/accuracies", "eval/loss", "eval/rewards/margins",
                               "eval/rewards/accuracies", "eval/kl"))
scored_pairs = pair_logps_by_length if args.group_by_length else pair_logps  # (B,) sums, chosen then rejected
policy.train()
for step in range(args.steps):
    idx = data.batch_indices(len(train_set.examples), args.batch_size, args.seed, step, rank, world_size)
    input_ids, response_mask, lengths = data.pair_batch([train_set.examples[i] for i in idx], pad)  # (2B, T)
    input_ids, response_mask = input_ids.to(device), response_mask.to(device)
    chosen_lengths, rejected_lengths = lengths.to(device).chunk(2)  # (B,) each
    optim.set_lr(optimizer, optim.lr_at(step, args.steps, args.lr, args.warmup))
    with runtime.autocast(device):  # chosen and rejected rows in one forward (or in groups of similar length)
        policy_chosen_logps, policy_rejected_logps = scored_pairs(ddp_policy, input_ids, response_mask)[:2]
    if args.live_reference:
        with torch.no_grad(), runtime.autocast(device):
            ref_chosen_logps, ref_rejected_logps = scored_pairs(reference, input_ids, response_mask)[:2]
    else:
        ref_chosen_logps, ref_rejected_logps = ref_chosen_all[idx].to(device), ref_rejected_all[idx].to(device)
    if args.loss == "sigmoid" and not args.label_smoothing:  # the DPO loss, Eq. 7 of the paper: the default
        loss, chosen_rewards, rejected_rewards = dpo_loss(
            policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta)
    else:  # a variant of lesson 5, chosen by --loss (cDPO, IPO, hinge, SimPO, ORPO)
        loss, chosen_rewards, rejected_rewards = preference_loss(
            args.loss, policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta,
            args.label_smoothing, chosen_lengths, rejected_lengths, args.simpo_gamma)
    if args.rpo_alpha:  # RPO (Pang et al. 2024): keep the chosen response likely; a token mean over all ranks
        loss = loss + args.rpo_alpha * chosen_nll(policy_chosen_logps, chosen_lengths,
                                                  runtime.global_mean_divisor(chosen_lengths.sum()))
    optim.check_finite(loss, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
    optimizer.step()
    progress.step(step + 1, runtime.sum_over_ranks(input_ids.numel()), runtime.mean_over_ranks(train_metrics(
        loss, chosen_rewards, rejected_rewards, policy_chosen_logps, policy_rejected_logps,
        ref_chosen_logps, ref_rejected_logps, lengths, runtime.global_mean_divisor(lengths.sum()))))
    if master and runlog.is_eval_step(step + 1, args.eval_every, args.steps):
        checkpoint.save_checkpoint(f"{out_dir}/model.pt", policy, "dpo", step + 1,
                                   extra={"args": vars(args), "beta": beta, "init": args.init})
progress.close()  # training time ends here; evaluation below is not counted
# the reference must be exactly the SFT model still: frozen means frozen
assert all(torch.equal(p, sft_state["model"][n]) for n, p in reference.state_dict().items()), "reference changed"

# ----------------------------------------------------------------------------- evaluate and save
if master:
    after, shown = evaluate.evaluate_chat(policy, enc, args.eval_limit)
    progress.log.log({"step": args.steps, "split": "final", **after})
    print(f"\n[beta {beta:g}] " + evaluate.behaviour_table(before, after, "SFT", "DPO", shown))
    views = logratio_views(policy, reference, val_set.examples, pad, enc)  # where the change sits (lesson 5)
    report.finish_stage("dpo", args, device, progress.throughput, out=out_dir, beta=beta, numbers={
        "beta": beta, "loss_type": args.loss, "label_smoothing": args.label_smoothing, "rpo_alpha": args.rpo_alpha,
        "lr": args.lr, "pairs_per_s": args.steps * args.batch_size * world_size / progress.throughput.elapsed,
        "world_size": world_size, "data": train_set.summary(), "held_out": progress.last_eval, "before": before,
        "after": after, "samples": {p: r for p, r in shown.values()}, "token_logratios": views, "metrics": {
            **evaluate.summary_metrics(before, after), **held_out_rows(progress.first_eval, progress.last_eval)}})
runtime.cleanup_distributed()
