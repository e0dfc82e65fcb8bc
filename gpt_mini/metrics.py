"""
Metrics: a JSONL logger, a tqdm progress bar with tokens/s, and matplotlib plots.

Every stage writes runs/<stage>/metrics.jsonl, one JSON object per line, each with
a "step" and a "split" ("train", "eval", ...). The plots and the report read it back.
"""

import json
import math
import os
import time

import matplotlib
matplotlib.use("Agg")  # no screen needed
import matplotlib.pyplot as plt  # noqa: E402
from tqdm import tqdm  # noqa: E402


class MetricsLogger:
    """Append-only JSONL log.

    A fresh run (resume_step 0) replaces the old file. A resumed run keeps the
    records up to the checkpoint's step and drops the ones logged after it, so the
    curve continues without duplicates.
    """

    def __init__(self, path, resume_step=0, enabled=True):
        self.path = path
        self.enabled = enabled
        if not enabled:
            return
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        kept = [r for r in read_metrics(path) if r.get("step", 0) <= resume_step] if resume_step else []
        with open(path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)

    def log(self, record):
        if not self.enabled:
            return
        clean = {k: (float(v) if hasattr(v, "__float__") and not isinstance(v, (int, str, bool)) else v)
                 for k, v in record.items()}
        with open(self.path, "a") as f:
            f.write(json.dumps(clean) + "\n")


def read_metrics(path):
    """The records of a metrics.jsonl. A last line cut short (a run killed while it wrote) is dropped,
    so that --resume, the plots and the report still read the file."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    if lines and not lines[-1].endswith("\n"):
        try:
            json.loads(lines[-1])
        except ValueError:
            lines.pop()
    return [json.loads(line) for line in lines if line.strip()]


def progress(total, desc, enabled=True, initial=0):
    """A tqdm bar; the postfix carries loss and tokens/s, tqdm itself shows the ETA."""
    return tqdm(total=total, desc=desc, initial=initial, disable=not enabled, dynamic_ncols=True,
                mininterval=1.0)


class Throughput:
    """Tokens per second over the whole run so far."""

    def __init__(self):
        self.start = time.time()
        self.end = None
        self.tokens = 0

    def add(self, n):
        self.tokens += n

    def stop(self):
        """Freeze the clock at the end of the training loop, so that the final
        evaluation and plots do not count as training time."""
        self.end = time.time()

    @property
    def elapsed(self):
        return (self.end or time.time()) - self.start

    @property
    def per_second(self):
        return self.tokens / max(self.elapsed, 1e-9)


def plot_curves(records, panels, out_png, title=None):
    """Draw one subplot per panel.

    panels: list of (panel title, [(split, key, label), ...]); a line is drawn for
    every (split, key) that has values in records.
    """
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    for ax, (panel_title, series) in zip(axes[0], panels):
        for split, key, label in series:
            points = [(r["step"], r[key]) for r in records
                      if r.get("split") == split and key in r and r[key] is not None
                      and not (isinstance(r[key], float) and math.isnan(r[key]))]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=label)
        ax.set_title(panel_title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


def write_summary(out_dir, summary):
    """runs/<stage>/summary.json: the stage's headline numbers, read by the report."""
    path = os.path.join(out_dir, "summary.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2, default=float)
    os.replace(tmp, path)


def read_summary(out_dir):
    path = os.path.join(out_dir, "summary.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


SWEEP_RATES = [("claims_false_agreed", "known false claims agreed"), ("claims_false_corrected", "known false corrected"),
               ("claims_true_confirmed", "known true confirmed"), ("heldout_false_agreed", "held-out wordings agreed"),
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
    """One figure comparing the beta runs: held-out accuracy, margin, drift, behaviour on known
    claims and side effects on facts and arithmetic. -> (png, text table).
    Folders it cannot use are left out and named at the end of the table."""
    found, skipped = beta_runs(dpo_dir)
    runs = [s for _, s in found]
    betas = [s["beta"] for s in runs]
    held = [s["held_out"] for s in runs]
    fig, axes = plt.subplots(1, 5, figsize=(21, 3.8))
    panels = [("held-out preference accuracy", "eval/rewards/accuracies"),
              ("held-out reward margin (β·Δ)", "eval/rewards/margins"),
              ("drift: held-out token KL to reference", "eval/kl")]
    for ax, (title, key) in zip(axes, panels):
        ax.plot(betas, [h[key] for h in held], marker="o")
        ax.set_title(title, fontsize=10)
    for ax, rates, title in ((axes[3], SWEEP_RATES, "claims the model knows (held-out, greedy)"),
                             (axes[4], SWEEP_SIDE_EFFECTS, "side effects (held-out, greedy)")):
        for key, label in rates:
            ax.plot(betas, [s["after"].get(key, float("nan")) for s in runs], marker="o", label=label)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(-0.03, 1.03)
        ax.legend(fontsize=7)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("β")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = os.path.join(dpo_dir, "beta_sweep.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
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


def plot_token_logratios(views, out_png, title=None):
    """One panel per pair and side: a bar per response token, height log pi_theta - log pi_ref.

    views: [{"title": str, "chosen": [(token text, ratio)], "rejected": [...]}, ...]
    """
    fig, axes = plt.subplots(len(views), 2, figsize=(15, 2.6 * len(views)), squeeze=False)
    for row, view in zip(axes, views):
        for ax, side, colour in zip(row, ("chosen", "rejected"), ("#2a8a4a", "#b0402a")):
            tokens = [t for t, _ in view[side]]
            ratios = [r for _, r in view[side]]
            ax.bar(range(len(ratios)), ratios, color=colour)
            ax.axhline(0, color="#444", lw=0.6)
            ax.set_xticks(range(len(tokens)))
            ax.set_xticklabels([repr(t)[1:-1] for t in tokens], rotation=70, fontsize=7)
            ax.set_title(f"{view['title']}: {side} (sum {sum(ratios):+.2f})", fontsize=9)
            ax.set_ylabel("log π/π_ref", fontsize=8)
            ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
