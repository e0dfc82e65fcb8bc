"""
The DPO beta sweep: 03_dpo.py once per beta, the usable runs/dpo/beta-*/ folders, and one figure and
table comparing them.
"""

import math
import os
import subprocess
import sys

from .errors import UserError
from .plots import DPI, FIGURE_WIDTH, panel_grid, plt, save_figure, style_axes
from .runlog import read_summary
from .runtime import under_torchrun

SWEEP_RATES = [("claims_false_agreed", "known false claims agreed"),
               ("claims_false_corrected", "known false corrected"),
               ("claims_true_confirmed", "known true confirmed"),
               ("heldout_false_agreed", "held-out wordings agreed"),
               ("heldout_true_confirmed", "held-out wordings confirmed"),
               ("claims_rude", "rude replies")]
SWEEP_SIDE_EFFECTS = [("facts_sft_entities", "facts (SFT entities)"), ("arith_cot", "sums step by step")]

SWEEP_HELD_OUT = ("eval/rewards/accuracies", "eval/rewards/margins", "eval/kl")


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _why_unusable(s):
    """Why a DPO summary cannot be drawn or reported (None when it can): what the sweep and the report read."""
    if not isinstance(s, dict):
        return "summary.json is not a JSON object"
    beta = s.get("beta")
    if not _is_number(beta) or not math.isfinite(beta) or beta <= 0:
        return f"beta {beta!r} is not a number > 0"
    for part, keys in (("held_out", SWEEP_HELD_OUT), ("after", [k for k, _ in SWEEP_RATES + SWEEP_SIDE_EFFECTS])):
        if not isinstance(s.get(part), dict) or not all(_is_number(s[part].get(k)) for k in keys):
            return f"its summary has no '{part}' numbers"
    if not isinstance(s.get("metrics"), dict) or not all(isinstance(v, dict) for v in s["metrics"].values()):
        return "its summary has no 'metrics' table"
    return None


def beta_runs(dpo_dir):
    """The usable runs/dpo/beta-*/ folders, sorted by beta -> ([(folder, summary)], ["name (why skipped)"]).

    A folder that cannot be used (an unfinished run without summary.json, an unreadable file,
    a beta that is not > 0, missing numbers) is skipped and named, never an error: a leftover
    folder must not break a later run."""
    found, skipped = [], []
    names = sorted(os.listdir(dpo_dir)) if os.path.isdir(dpo_dir) else []
    for name in (n for n in names if n.startswith("beta-")):
        folder = os.path.join(dpo_dir, name)
        try:
            s = read_summary(folder)
        except (OSError, ValueError) as e:  # ValueError: bad JSON or not UTF-8
            skipped.append(f"{name} (summary.json is not readable: {type(e).__name__})")
            continue
        why = "no summary.json: an unfinished run?" if s is None else _why_unusable(s)
        if why:
            skipped.append(f"{name} ({why})")
        else:
            found.append((folder, s))
    return sorted(found, key=lambda fs: fs[1]["beta"]), skipped


def beta_summaries(dpo_dir):
    """Summaries of the usable runs/dpo/beta-*/ folders, sorted by beta (see beta_runs)."""
    return [s for _, s in beta_runs(dpo_dir)[0]]


def plot_beta_sweep(dpo_dir):
    """One figure comparing the beta runs: held-out accuracy, margin, token KL, behaviour on known
    claims and side effects on facts and arithmetic. -> (png, text table).
    Folders it cannot use are left out and named at the end of the table."""
    found, skipped = beta_runs(dpo_dir)
    runs = [s for _, s in found]
    betas = [s["beta"] for s in runs]
    held = [s["held_out"] for s in runs]
    fig = plt.figure(figsize=(FIGURE_WIDTH, 10.6), layout="constrained")
    axes = panel_grid(fig, 5, 2, spans={4: 2})  # two to a row; the claims, with six lines, get a row
    panels = [("held-out preference accuracy", "eval/rewards/accuracies"),
              ("held-out reward margin (β·Δ)", "eval/rewards/margins"),
              ("held-out token KL to the reference", "eval/kl")]
    for ax, (title, key) in zip(axes, panels):
        ax.plot(betas, [h[key] for h in held], marker="o")
        style_axes(ax, title)
    for ax, rates, title, where in ((axes[3], SWEEP_SIDE_EFFECTS, "side effects (held-out, greedy)", {}),
                                    (axes[4], SWEEP_RATES, "claims the model knows (held-out, greedy)",
                                     {"loc": "center left", "bbox_to_anchor": (1.01, 0.5)})):
        for key, label in rates:
            ax.plot(betas, [s["after"].get(key, float("nan")) for s in runs], marker="o", label=label)
        ax.set_ylim(-0.03, 1.03)
        style_axes(ax, title, ylabel="rate", legend=True, **where)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(betas, [f"{b:g}" for b in betas])  # the betas that ran, not powers of ten
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        style_axes(ax, xlabel="β")
    path = save_figure(fig, os.path.join(dpo_dir, "beta_sweep.png"), dpi=DPI)
    columns = SWEEP_RATES + SWEEP_SIDE_EFFECTS
    lines = [f"{'beta':>6s} {'eval acc':>9s} {'margin':>8s} {'Δ logratio':>10s} {'token KL':>9s} "
             + " ".join(f"{label[:13]:>13s}" for _, label in columns)]
    for s, h in zip(runs, held):
        lines.append(f"{s['beta']:6g} {h['eval/rewards/accuracies']:9.3f} {h['eval/rewards/margins']:8.3f} "
                     f"{h['eval/rewards/margins'] / s['beta']:10.2f} {h['eval/kl']:9.4f} "
                     + " ".join(f"{100 * s['after'].get(k, float('nan')):12.1f}%" for k, _ in columns))
    lines += [f"skipped {why}" for why in skipped]
    table = "\n".join(lines)
    with open(os.path.join(dpo_dir, "beta_sweep.txt"), "w") as f:
        f.write(table + "\n")
    return path, table


def without_beta_flag(argv):
    """The command-line arguments with --beta and its values taken out (the sweep gives each run its own)."""
    out, skipping = [], False
    for arg in argv:
        if arg == "--beta" or arg.startswith("--beta="):
            skipping = arg == "--beta"
            continue
        if skipping and not arg.startswith("-"):
            continue
        skipping = False
        out.append(arg)
    return out


def run_sweep(script, betas, argv=None):
    """`03_dpo.py --beta 0.01 0.1 0.5 1` runs the script once per beta, with the rest of its command line, each
    into its own runs/dpo/beta-<beta>/ folder; the last one draws beta_sweep.png. -> the exit status.
    Not under torchrun: its processes would each start the whole sweep, as plain processes."""
    if under_torchrun():
        raise UserError("a --beta sweep does not run under torchrun; run one --beta per torchrun command")
    rest = without_beta_flag(sys.argv[1:] if argv is None else argv)
    for beta in betas:
        print(f"\n=== beta {beta:g} ===", flush=True)
        status = subprocess.call([sys.executable, script, *rest, "--beta", f"{beta!r}"])
        if status != 0:
            print(f"error: the run with beta {beta:g} failed; the finished ones are kept", file=sys.stderr)
            return status
    return 0


def draw_if_several(dpo_dir):
    """At the end of a DPO run: with two or more finished beta runs in dpo_dir, redraw and print the comparison."""
    if len(beta_summaries(dpo_dir)) > 1:
        path, table = plot_beta_sweep(dpo_dir)
        print(f"\nbeta sweep ({path}):\n{table}")
