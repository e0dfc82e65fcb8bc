"""
The figures of a stage: its training curves (from metrics.jsonl) and, for DPO, where the
change sits token by token. matplotlib, without a screen.
"""

import math
import os

import matplotlib

matplotlib.use("Agg")  # no screen needed
import matplotlib.pyplot as plt  # noqa: E402

from .errors import write_failed  # noqa: E402


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
    return save_figure(fig, out_png, title, dpi=110)


def save_figure(fig, out_png, title=None, dpi=110):
    """The one way gpt_mini writes a figure: title, layout, write (creating the folder) and close -> out_png.
    A write that fails (a full disk) raises a UserError naming the file."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
        fig.savefig(out_png, dpi=dpi)
    except OSError as e:
        raise write_failed(out_png, e, "the stage's checkpoint and metrics.jsonl are kept") from None
    finally:
        plt.close(fig)
    return out_png


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
    return save_figure(fig, out_png, title, dpi=100)


def stage_curves(stage, beta=None, pass_k=None):
    """What each stage draws from its metrics.jsonl -> (file name, title, panels for plot_curves)."""
    if stage == "pretrain":
        return "loss.png", "pretraining", [
            ("loss (nats/token)", [("train", "loss", "train"), ("eval", "loss", "held-out"),
                                   ("eval", "unigram", "unigram baseline")])]
    if stage == "sft":
        return "curves.png", "SFT", [
            ("assistant loss", [("train", "loss", "train"), ("eval", "assistant_loss", "held-out")])]
    if stage == "dpo":
        both = [("loss", "loss"), ("rewards/margins", "rewards/margins"), ("rewards/accuracies", "rewards/accuracies")]
        return "curves.png", f"DPO, beta = {beta:g}", [
            *[(title, [("train", key, "train"), ("eval", f"eval/{key}", "held-out")]) for title, key in both],
            ("logps (likelihood displacement)", [("train", "logps/chosen", "chosen"),
                                                 ("train", "logps/rejected", "rejected")]),
            ("distance from the reference", [("eval", "eval/kl", "held-out token KL"),
                                             ("eval", "eval/abs_logratio", "held-out |log-ratio| per token")])]
    if stage == "reward_model":
        return "curves.png", "reward model (Bradley-Terry)", [
            ("loss", [("train", "loss", "train"), ("eval", "eval/loss", "held-out")]),
            ("pair accuracy", [("train", "accuracy", "train"), ("eval", "eval/accuracy", "held-out")]),
            ("margin r_w - r_l", [("train", "margin", "train"), ("eval", "eval/margin", "held-out")])]
    if stage == "rlvr":
        return "reward.png", "RLVR", [
            ("mean reward (train samples)", [("train", "reward", "reward")]),
            ("held-out accuracy", [("eval", "greedy_accuracy", "greedy"),
                                   ("eval", f"pass@{pass_k}", f"pass@{pass_k}"),
                                   ("eval", "sample_accuracy", "one sample, T=1")]),
            ("KL to reference (k3)", [("train", "kl", "kl")])]
    raise ValueError(f"no curves for stage {stage!r}")
