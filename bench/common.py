"""
Shared pieces of the benchmarks: finding the repository, reading the stage
scripts' defaults without running them, the interleaved timing loop and the
printed tables.

Why interleave: the machine is shared, so its speed drifts from second to
second. Two contestants timed one after the other would each see a different
machine. Timing them in alternating blocks (A B, then B A, ...) and keeping the
ratio of each pair of blocks cancels most of that drift; the median over the
repeats throws away the pairs that a burst of outside load hit.
"""

import ast
import datetime
import os
import platform
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import torch  # noqa: E402  (after the path fix, like the gpt_mini imports of the scripts)


def script_defaults(script):
    """{dest: default} of every parser.add_argument(...) with a literal default in a stage script.

    The stage scripts parse their arguments at import time, so importing them is
    not an option; reading the source keeps the benchmark's shape in step with
    whatever the script currently says.
    """
    with open(os.path.join(ROOT, script), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    found = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument"):
            continue
        flags = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        long_flags = [f for f in flags if f.startswith("--")]
        if not long_flags:
            continue
        for kw in node.keywords:
            if kw.arg == "default":
                try:
                    found[long_flags[0][2:].replace("-", "_")] = ast.literal_eval(kw.value)
                except ValueError:
                    pass  # not a literal (e.g. computed); the caller keeps its own fallback
    return found


def timed(fn):
    """Seconds one call of fn takes (wall clock)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleave(contestants, repeats):
    """Time each contestant once per repeat, alternating the order every repeat.

    contestants: {name: fn} where fn() runs one timed block of work.
    returns {name: [seconds of repeat 0, repeat 1, ...]}.
    """
    names = list(contestants)
    seconds = {name: [] for name in names}
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            seconds[name].append(timed(contestants[name]))
    return seconds


def spread(values):
    """(median, min, max) of a list of numbers."""
    return statistics.median(values), min(values), max(values)


def ratio_line(label, ratios, goal=None):
    med, lo, hi = spread(ratios)
    text = f"{label}: median {med:.2f}x  (min {lo:.2f}, max {hi:.2f} over {len(ratios)} repeats)"
    if goal is not None:
        text += f"  goal >= {goal:g}x: {'met' if med >= goal else 'NOT met'}"
    return text + "\n  per repeat: " + " ".join(f"{r:.2f}" for r in ratios)


def table(header, rows):
    """Plain-text table: header is a list of column names, rows lists of cells."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine():
    """One line naming what the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{datetime.date.today().isoformat()} | {cpu} | nproc {os.cpu_count()} | "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads | python {platform.python_version()}")
