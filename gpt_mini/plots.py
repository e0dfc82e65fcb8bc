"""
The figures of a stage: its training curves (from metrics.jsonl) and, for DPO, where the
change sits token by token. matplotlib, without a screen.

The lesson pages show a figure at most about 810 px wide (less on a phone; a click opens it full
size). Text on screen is then font size x 810 / (72 x figure width in inches) pixels, whatever the
dpi, so the figures here are at most FIGURE_WIDTH inches wide, lay several panels out as a grid
rather than one long strip, and write no text smaller than FONT["small"] points: about 11 px at
810 px.
"""

import math
import os

import matplotlib

matplotlib.use("Agg")  # no screen needed
import matplotlib.pyplot as plt  # noqa: E402

from .errors import write_failed  # noqa: E402

FIGURE_WIDTH = 10.0  # inches: 810 px on the page is 81 px per inch
FONT = {"small": 10, "label": 11, "title": 12, "suptitle": 13}  # points; 10 pt is 11.25 px at 810 px
DPI = 120  # a 10-inch figure is 1200 px: sharp when opened full size


def panel_grid(fig, n, ncols, spans=None):
    """n axes on fig, ncols to a row, filled row by row; a last row with fewer panels is centred
    (a panel is two columns of a grid twice as fine). spans: {panel index: columns it takes} for a
    panel that should be wider (it then starts a row of its own)."""
    spans = spans or {}
    rows, row = [], []
    for i in range(n):
        width = spans.get(i, 1)
        if row and (sum(w for _, w in row) + width > ncols or width > 1):
            rows.append(row)
            row = []
        row.append((i, width))
    rows.append(row)
    grid = fig.add_gridspec(len(rows), 2 * ncols)
    axes = [None] * n
    for r, row in enumerate(rows):
        col = ncols - sum(w for _, w in row)  # centring offset, in half-panels
        for i, width in row:
            axes[i] = fig.add_subplot(grid[r, col:col + 2 * width])
            col += 2 * width
    return axes


def style_axes(ax, title=None, xlabel=None, ylabel=None, legend=False, **legend_kw):
    """The sizes every panel uses: title, axis labels, tick labels and (legend=True) its legend."""
    if title is not None:
        ax.set_title(title, fontsize=FONT["title"])
    if xlabel is not None:
        ax.set_xlabel(xlabel, fontsize=FONT["label"])
    if ylabel is not None:
        ax.set_ylabel(ylabel, fontsize=FONT["label"])
    ax.tick_params(labelsize=FONT["small"])
    ax.xaxis.get_offset_text().set_fontsize(FONT["small"])
    ax.yaxis.get_offset_text().set_fontsize(FONT["small"])
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=FONT["small"], **legend_kw)


def plot_curves(records, panels, out_png, title=None):
    """Draw one subplot per panel: one panel alone, three in a row, otherwise two to a row.

    panels: list of (panel title, [(split, key, label), ...]); a line is drawn for
    every (split, key) that has values in records.
    """
    n = len(panels)
    ncols = n if n <= 3 else 2
    rows = math.ceil(n / ncols)
    width = FIGURE_WIDTH / 2 if n == 1 else FIGURE_WIDTH
    height = (3.7 if ncols == 3 else 3.2) * rows + (0.4 if title else 0)
    fig = plt.figure(figsize=(width, height), layout="constrained")
    for ax, (panel_title, series) in zip(panel_grid(fig, n, ncols), panels):
        for split, key, label in series:
            points = [(r["step"], r[key]) for r in records
                      if r.get("split") == split and key in r and r[key] is not None
                      and not (isinstance(r[key], float) and math.isnan(r[key]))]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=4, label=label)
        ax.grid(alpha=0.3)
        style_axes(ax, panel_title, "step", legend=True)
    return save_figure(fig, out_png, title, dpi=DPI)


def save_figure(fig, out_png, title=None, dpi=110):
    """The one way gpt_mini writes a figure: title, layout, write (creating the folder) and close -> out_png.
    A figure made with a layout engine (layout="constrained") keeps it; any other is laid out tight.
    A write that fails (a full disk) raises a UserError naming the file."""
    if fig.get_layout_engine() is None:
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    elif title:
        fig.suptitle(title, fontsize=FONT["suptitle"])
    try:
        os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
        fig.savefig(out_png, dpi=dpi)
    except OSError as e:
        raise write_failed(out_png, e, "the stage's checkpoint and metrics.jsonl are kept") from None
    finally:
        plt.close(fig)
    return out_png


TOKEN_ROW = 0.19  # inches per response token: 15 px at 810 px, for labels of 11.25 px


def token_label(token):
    """A token as an axis label: escapes shown (\\n), a $ kept literal (not mathtext), and a token of
    spaces alone as ␣, not blank."""
    text = repr(token)[1:-1].replace("$", r"\$")
    return "␣" * len(text) if text and not text.strip() else text


def plot_token_logratios(views, out_png, title=None):
    """One row per pair, chosen on the left and rejected on the right: a horizontal bar per response
    token, length log pi_theta - log pi_ref, the tokens top to bottom in reading order on the y axis.

    views: [{"title": str, "chosen": [(token text, ratio)], "rejected": [...]}, ...]
    """
    lengths = [max(len(view["chosen"]), len(view["rejected"]), 1) for view in views]
    heights = [TOKEN_ROW * n + 1.3 for n in lengths]  # bars, then the row's titles and x axis
    fig = plt.figure(figsize=(FIGURE_WIDTH, sum(heights) + (0.5 if title else 0)), layout="constrained")
    rows = fig.subfigures(len(views), 1, height_ratios=heights, squeeze=False)[:, 0] if views else []
    for subfig, view, n in zip(rows, views, lengths):
        subfig.suptitle(view["title"], fontsize=FONT["title"], fontweight="bold")
        for ax, side, colour in zip(subfig.subplots(1, 2), ("chosen", "rejected"), ("#2a8a4a", "#b0402a")):
            tokens = [token_label(t) for t, _ in view[side]]
            ratios = [r for _, r in view[side]]
            ax.barh(range(len(ratios)), ratios, color=colour, height=0.7)
            ax.axvline(0, color="#444", lw=0.8)
            ax.set_yticks(range(len(tokens)), tokens, fontsize=FONT["small"])
            ax.set_ylim(n - 0.5, -0.5)  # first token on top; both sides at the same spacing
            ax.grid(alpha=0.3, axis="x")
            style_axes(ax, f"{side} (sum {sum(ratios):+.2f})", r"$\log\pi_\theta - \log\pi_\mathrm{ref}$ (nats)")
    return save_figure(fig, out_png, title, dpi=DPI)


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
