"""
What a stage writes while it runs: runs/<stage>/metrics.jsonl (one JSON object per line,
each with a "step" and a "split": "train", "eval", ...), a tqdm progress bar with the
training throughput, and runs/<stage>/summary.json, the headline numbers the report reads.
"""

import json
import os
import time

from tqdm import tqdm


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


class Progress:
    """The training loop's one logging call: progress bar, throughput, and the "train" records of metrics.jsonl.

    step() counts the step's tokens, shows `show` on the bar, and when asked writes the record to the log;
    with average=True it writes the mean of the records since the last write (DPO's interval averages).
    close() stops the clock, so that the evaluation after the loop is not counted as training time.
    """

    def __init__(self, log, total_steps, desc, enabled=True, initial=0, show=("loss",), average=False):
        self.log, self.show, self.average, self.interval = log, show, average, []
        self.throughput = Throughput()
        self.bar = progress(total_steps, desc, enabled=enabled, initial=initial)

    def step(self, step, tokens, record, write=False, with_throughput=False):
        """-> the record as written (the interval mean with average=True), or None on a step that writes nothing."""
        self.throughput.add(tokens)
        self.bar.update(1)
        shown = {k: f"{record[k]:.3f}" for k in self.show}
        self.bar.set_postfix(shown | {"tok_s": f"{self.throughput.per_second:,.0f}"})
        if self.average:
            self.interval.append(record)
        if not write:
            return None
        if self.average:
            record = {k: sum(r[k] for r in self.interval) / len(self.interval) for k in self.interval[0]}
        self.interval = []
        if with_throughput:
            record = {**record, "tokens_per_s": self.throughput.per_second}
        self.log.log({"step": step, "split": "train", **record})
        return record

    def write(self, line):
        self.bar.write(line)

    def close(self):
        self.bar.close()
        self.throughput.stop()
