"""
What a stage writes while it runs: runs/<stage>/metrics.jsonl (one JSON object per line,
each with a "step" and a "split": "train", "eval", ...), a tqdm progress bar with the
training throughput, and runs/<stage>/summary.json, the headline numbers the report reads.
"""

import json
import os
import time

from tqdm import tqdm

from .errors import write_failed


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
        try:
            with open(self.path, "a") as f:
                f.write(json.dumps(clean) + "\n")
        except OSError as e:
            raise write_failed(self.path, e, "the records before this one are kept, and so is the last checkpoint") \
                from None


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
    try:
        with open(tmp, "w") as f:
            json.dump(summary, f, indent=2, default=float)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise write_failed(path, e, "the stage's checkpoint and metrics.jsonl are kept") from None


def read_summary(out_dir):
    path = os.path.join(out_dir, "summary.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def is_eval_step(step, every, total_steps):
    """After `step` steps (1-based): is this a step for the held-out evaluation and the checkpoint?
    Every `every` steps, and always the last one."""
    return step % every == 0 or step == total_steps


class Progress:
    """The training loop's one logging call, progress.step(...), after the optimizer step.

    It counts the step's tokens for the throughput, updates the bar, writes the "train" record of
    metrics_path (a MetricsLogger, progress.log) every `log_every` steps (log_every=None: on the
    evaluation steps; average=True: the mean of the records since the last write, DPO's interval
    averages), and on every evaluation step (is_eval_step) runs evaluate(step) -> the held-out
    metrics, writes them as the "eval" record and prints one line with the `line` keys of both
    records. evaluate_first=True evaluates at the start as well; a resumed run passes its step as initial.
    close() stops the clock, so that the evaluation after the loop is not counted as training time.
    Under DDP every rank but rank 0 passes master=False, and only rank 0 an evaluate function.
    """

    def __init__(self, metrics_path, total_steps, desc, eval_every, evaluate=None, *, log_every=10, average=False,
                 line=("loss",), show=("loss",), with_throughput=False, evaluate_first=False, initial=0, bar=True,
                 master=True):
        self.log = MetricsLogger(metrics_path, resume_step=initial, enabled=master)  # .log.log(record) for others
        self.total_steps, self.eval_every, self.last_step = total_steps, eval_every, initial
        self.evaluate = evaluate if master else None
        self.log_every, self.average, self.line, self.show = log_every, average, line, show
        self.with_throughput, self.interval, self.evals = with_throughput, [], {}
        self.eval_seconds, self.throughput = 0.0, None  # evaluations inside the loop are not training time
        if evaluate_first and self.evaluate is not None:  # before the clock starts: not training time
            self._evaluate(initial)
        self.throughput = Throughput()
        self.bar = progress(total_steps, desc, enabled=bar and master, initial=initial)

    @property
    def train_seconds(self):
        """Seconds of training so far: the loop's time without the evaluations inside it."""
        return 0.0 if self.throughput is None else self.throughput.elapsed - self.eval_seconds

    def _evaluate(self, step, train=None):
        """Run the held-out evaluation, log it (with train_seconds, the training time before it), print the
        step's line -> the held-out record."""
        train_seconds, start = self.train_seconds, time.time()
        held_out = self.evaluate(step)
        if self.throughput is not None:  # the clock runs: take the evaluation off it
            self.eval_seconds += time.time() - start
        self.log.log({"step": step, "split": "eval", "train_seconds": train_seconds, **held_out})
        self.evals[step] = held_out
        train = train or {}
        cells = [f"{k} {train[k]:.4f}" for k in self.line if k in train]
        cells += [f"{'' if k.startswith('eval/') else 'held-out '}{k} {held_out[k]:.4f}" for k in self.line
                  if k in held_out]
        self.write(f"step {step:{len(str(self.total_steps))}d} | " + " | ".join(cells))
        return held_out

    @property
    def first_eval(self):
        return self.evals[min(self.evals)]

    @property
    def last_eval(self):
        return self.evals[max(self.evals)]

    def step(self, step, tokens, record):
        """step: steps done (1-based); tokens: this step's tokens (all processes); record: the step's numbers."""
        self.throughput.add(tokens)
        self.last_step = step
        self.bar.update(1)
        shown = {k: f"{record[k]:.3f}" for k in self.show}
        self.bar.set_postfix(shown | {"tok_s": f"{self.throughput.per_second:,.0f}"})
        self.interval.append(record)
        evaluating = is_eval_step(step, self.eval_every, self.total_steps)
        train = record
        if (step % self.log_every == 0) if self.log_every else evaluating:
            if self.average:
                train = {k: sum(r[k] for r in self.interval) / len(self.interval) for k in record}
            if self.with_throughput:
                train = {**train, "tokens_per_s": self.throughput.per_second}
            self.log.log({"step": step, "split": "train", **train})
            self.interval = []
        if evaluating and self.evaluate is not None:
            self._evaluate(step, train)

    def write(self, line):
        tqdm.write(line)

    @property
    def finished(self):
        """Did the run reach its last step (and not stop early, as --stop-after does)?"""
        return self.last_step >= self.total_steps

    def close(self):
        """Stop the clock; a run that stopped early says how to go on."""
        self.bar.close()
        self.throughput.stop()
        if not self.finished and self.log.enabled:
            self.write(f"stopped after step {self.last_step} of {self.total_steps}; continue with --resume")
