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
    """Append-only JSONL log. On a fresh run the old file is replaced; on resume it is kept."""

    def __init__(self, path, resume=False, enabled=True):
        self.path = path
        self.enabled = enabled
        if enabled:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            if not resume and os.path.exists(path):
                os.remove(path)

    def log(self, record):
        if not self.enabled:
            return
        clean = {k: (float(v) if hasattr(v, "__float__") and not isinstance(v, (int, str, bool)) else v)
                 for k, v in record.items()}
        with open(self.path, "a") as f:
            f.write(json.dumps(clean) + "\n")


def read_metrics(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def progress(total, desc, enabled=True, initial=0):
    """A tqdm bar; the postfix carries loss and tokens/s, tqdm itself shows the ETA."""
    return tqdm(total=total, desc=desc, initial=initial, disable=not enabled, dynamic_ncols=True,
                mininterval=1.0)


class Throughput:
    """Tokens per second over the whole run so far."""

    def __init__(self):
        self.start = time.time()
        self.tokens = 0

    def add(self, n):
        self.tokens += n

    @property
    def elapsed(self):
        return time.time() - self.start

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
