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

Every --log-every steps it logs TRL's metrics on the training stream and on the
held-out pairs (eval/...): loss, rewards/chosen, rewards/rejected,
rewards/margins, rewards/accuracies, logps/chosen, logps/rejected, and the
drift from the reference. Before and after, it grades greedy replies to
held-out prompts, and prints "knows vs says": does the model know the fact
(the plain question), can it check a neutral statement, and what does it say
when a user states an opinion (agrees with false claims, corrects them,
confirms true ones, in training and in held-out wordings; rude replies).
At the end it draws, for three held-out pairs, log pi - log ref for every
response token (token_logratios.png): where DPO moved the model.

Each beta writes its own folder, runs/dpo/beta-<beta>/, so reruns never
overwrite each other; several betas in one command run a sweep and draw
runs/dpo/beta_sweep.png.

What it simplifies: the reference log-probs are computed once before training
(the reference is frozen, so this is exact; --live-reference recomputes them);
pairs are drawn at random each step; no gradient accumulation.

Run it:
    python 03_dpo.py                              # beta 0.1, about 1 minute on a 2-core CPU
    python 03_dpo.py --beta 0.5                   # change beta and rerun
    python 03_dpo.py --beta 0.01 0.1 0.5 1.0      # the sweep + comparison figure
    python 03_dpo.py --quick
    python 03_dpo.py --data my_pairs.jsonl        # prompt/chosen/rejected, strings or message lists
"""

import argparse
import os
import sys

import torch

from gpt_mini import checkpoint, cli, data, evaluate, optim, plots, report, runlog, runtime, sweep
from gpt_mini.losses import DPO_LOSS_TYPES, chosen_nll, dpo_loss, preference_metrics
from gpt_mini.preference import drift, held_out_metrics, logratio_views, pair_logps, score_pairs
from gpt_mini.tokenizer import load_tokenizer

# ----------------------------------------------------------------------------- arguments
parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
cli.add_common_args(parser, "dpo")
parser.add_argument("--init", type=cli.path_arg, default="runs/sft",
                    help="SFT checkpoint: the policy's start and the frozen reference")
parser.add_argument("--beta", type=cli.positive_float, nargs="+", default=[0.1],
                    help="KL strength, > 0; several values run a sweep")
parser.add_argument("--loss", default="sigmoid", choices=DPO_LOSS_TYPES, help="sigmoid (DPO), ipo or hinge")
parser.add_argument("--label-smoothing", type=cli.float_arg(0, 0.5, high_open=True), default=0.0,
                    help="epsilon of conservative DPO, in [0, 0.5) (sigmoid loss only)")
parser.add_argument("--rpo-alpha", type=cli.non_negative_float, default=0.0,
                    help="weight of an NLL term on the chosen response (RPO); 0 is pure DPO")
parser.add_argument("--steps", type=cli.positive_int, default=400, help="optimizer steps per beta")
parser.add_argument("--batch-size", type=cli.positive_int, default=16, help="pairs per step")
parser.add_argument("--lr", type=cli.positive_float, default=5e-6, help="peak learning rate (AdamW)")
parser.add_argument("--warmup", type=cli.non_negative_int, default=20, help="linear warm-up steps")
parser.add_argument("--log-every", type=cli.positive_int, default=100,
                    help="steps between log lines, held-out metrics and checkpoints")
parser.add_argument("--live-reference", action="store_true",
                    help="run the reference every step instead of caching its log-probs")
parser.add_argument("--eval-limit", type=cli.positive_int, default=None,
                    help="grade only the first N held-out items of each kind")
args = parser.parse_args()
if args.label_smoothing and args.loss != "sigmoid":
    parser.error(f"--label-smoothing applies to --loss sigmoid only, "
                 f"got --loss {args.loss} with --label-smoothing {args.label_smoothing:g}")
cli.apply_quick(args, parser, steps=40, batch_size=8, log_every=20, eval_limit=16)

device = runtime.pick_device(args.device)
runtime.seed_everything(args.seed)

# ----------------------------------------------------------------------------- load
enc = load_tokenizer()
sft_state = checkpoint.load_init(args.init, ["sft"], device)
reference = checkpoint.model_from_checkpoint(sft_state, device)
reference.eval().requires_grad_(False)  # frozen: never trained, never in train mode
block_size = reference.config.block_size

# ----------------------------------------------------------------------------- data
try:
    train_set = data.encode_pairs(enc, args.data or data.data_path("dpo_train.jsonl"), block_size)
    val_set = data.encode_pairs(enc, data.data_path("dpo_val.jsonl"), block_size)
except data.DataError as e:
    sys.exit(f"error: {e}")
print(f"pairs: {train_set.summary()}; held-out: {val_set.summary()}")
pad = data.pad_id(enc)
if args.eval_limit:
    val_set.examples = val_set.examples[:4 * args.eval_limit]

# The reference is frozen, so its log-probs are fixed numbers: compute them once. Each is computed at the
# precision its policy pass runs at (bf16 autocast on CUDA in the loop, fp32 in the held-out metrics),
# so that at step 0, where policy = reference, the two agree.
print("scoring every pair under the frozen reference (once) ...")
with runtime.autocast(device):
    ref_chosen_all, ref_rejected_all, _ = score_pairs(reference, train_set.examples, pad)
val_ref = score_pairs(reference, val_set.examples, pad)


def held_out(policy, beta):
    return held_out_metrics(policy, reference, val_set.examples, val_ref, pad, beta, args.loss, args.label_smoothing)


print("grading the SFT model's replies on held-out prompts ...")
before, _ = evaluate.evaluate_chat(reference, enc, args.eval_limit)

# ----------------------------------------------------------------------------- loop, once per beta
for beta in args.beta:
    out_dir = cli.prepare_out_dir(os.path.join(args.out, f"beta-{beta:g}"))
    torch.manual_seed(args.seed)
    policy = checkpoint.model_from_checkpoint(sft_state, device)
    policy.train()
    optimizer = optim.make_optimizer(policy, args.lr, weight_decay=0.0)
    log = runlog.MetricsLogger(f"{out_dir}/metrics.jsonl")
    step0 = held_out(policy, beta)
    log.log({"step": 0, "split": "eval", **step0})
    print(f"\n[beta {beta:g}] step 0 held-out: loss {step0['eval/loss']:.4f} (log 2 = 0.6931), margin "
          f"{step0['eval/rewards/margins']:.4f}, accuracy {step0['eval/rewards/accuracies']:.2f} (ties count as wrong)")
    progress = runlog.Progress(log, args.steps, f"dpo beta={beta:g}", enabled=not args.no_progress, average=True)
    try:
        for step in range(args.steps):
            idx = data.sample_indices(len(train_set.examples), args.batch_size, data.step_generator(args.seed, step))
            input_ids, response_mask, lengths = data.pair_batch([train_set.examples[i] for i in idx], pad)
            input_ids, response_mask = input_ids.to(device), response_mask.to(device)
            chosen_lengths, rejected_lengths = lengths.to(device).chunk(2)
            optim.set_lr(optimizer, optim.lr_at(step, args.steps, args.lr, args.warmup))
            with runtime.autocast(device):  # one forward for chosen and rejected together
                policy_chosen_logps, policy_rejected_logps, _ = pair_logps(policy, input_ids, response_mask)
            if args.live_reference:
                with torch.no_grad(), runtime.autocast(device):
                    ref_chosen_logps, ref_rejected_logps, _ = pair_logps(reference, input_ids, response_mask)
            else:
                ref_chosen_logps, ref_rejected_logps = ref_chosen_all[idx].to(device), ref_rejected_all[idx].to(device)
            loss, chosen_rewards, rejected_rewards = dpo_loss(
                policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps,
                beta, args.label_smoothing, args.loss, chosen_lengths, rejected_lengths)
            if args.rpo_alpha:  # RPO (Pang et al. 2024): keep the chosen response likely
                loss = loss + args.rpo_alpha * chosen_nll(policy_chosen_logps, chosen_lengths)
            optim.check_finite(loss, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            optimizer.step()
            logged = (step + 1) % args.log_every == 0 or step + 1 == args.steps
            averaged = progress.step(step + 1, input_ids.numel(), {
                "loss": loss.item(), **preference_metrics(chosen_rewards, rejected_rewards),
                "logps/chosen": policy_chosen_logps.mean().item(),
                "logps/rejected": policy_rejected_logps.mean().item(),
                "drift": drift(policy_chosen_logps.detach(), policy_rejected_logps.detach(),
                               ref_chosen_logps, ref_rejected_logps, lengths)}, write=logged)
            if logged:
                evals = held_out(policy, beta)
                log.log({"step": step + 1, "split": "eval", **evals})
                a = averaged
                progress.write(f"step {step + 1:4d} | loss {a['loss']:.4f} | margin {a['rewards/margins']:+.3f} | "
                               f"acc {a['rewards/accuracies']:.2f} | logps/chosen {a['logps/chosen']:.2f} "
                               f"rejected {a['logps/rejected']:.2f} | eval/acc {evals['eval/rewards/accuracies']:.2f} "
                               f"eval/margin {evals['eval/rewards/margins']:+.3f} eval/kl {evals['eval/kl']:.4f}")
                checkpoint.save_checkpoint(f"{out_dir}/model.pt", policy, "dpo", step + 1,
                                           extra={"args": vars(args), "beta": beta, "init": args.init})
    except optim.NonFiniteLossError as e:
        progress.close()
        sys.exit(f"error: {e}")
    progress.close()  # training time ends here; evaluation below is not counted

    # ------------------------------------------------------------------------- evaluate and save
    after, shown = evaluate.evaluate_chat(policy, enc, args.eval_limit)
    log.log({"step": args.steps, "split": "final", **after})
    print(f"\n[beta {beta:g}] behaviour on held-out prompts, greedy:")
    print(evaluate.behaviour_tables(before, after, "SFT", "DPO"))
    views = logratio_views(policy, reference, val_set.examples, pad, enc)  # where the change sits (lesson 5)
    if views:
        plots.plot_token_logratios(views, f"{out_dir}/token_logratios.png",
                                   title=f"log π_θ − log π_ref per response token after DPO (β = {beta:g})")
    for kind, (prompt, reply) in shown.items():
        if kind.startswith("claim"):
            print(f"  [{kind}] {prompt!r} -> {reply!r}")
    report.finish_stage("dpo", args, device, progress.throughput, out=out_dir, update_report=False, beta=beta, numbers={
        "beta": beta, "loss_type": args.loss, "label_smoothing": args.label_smoothing, "rpo_alpha": args.rpo_alpha,
        "lr": args.lr, "pairs_per_s": args.steps * args.batch_size / progress.throughput.elapsed,
        "data": train_set.summary(), "held_out": evals, "before": before, "after": after,
        "metrics": {**evaluate.summary_metrics(before, after),
                    **{label: {"before": step0[key], "after": evals[key], "pct": pct} for label, key, pct in (
                        ("held-out preference accuracy", "eval/rewards/accuracies", True),
                        ("held-out reward margin", "eval/rewards/margins", False),
                        ("held-out token KL to reference", "eval/kl", False))}},
        "samples": {p: r for p, r in shown.values()}, "token_logratios": views,
        "plots": ["curves.png"] + (["token_logratios.png"] if views else [])})
    # the reference must be exactly the SFT model still: frozen means frozen
    assert all(torch.equal(p, sft_state["model"][n]) for n, p in reference.state_dict().items()), "reference changed"

# ----------------------------------------------------------------------------- compare the betas, report
if len(args.beta) > 1 or len(sweep.beta_summaries(args.out)) > 1:
    path, table = sweep.plot_beta_sweep(args.out)
    print(f"\nbeta sweep ({path}):\n{table}")
report.update_for_stage(args.out, "dpo")
