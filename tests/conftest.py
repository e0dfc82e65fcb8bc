"""Shared fixtures (one --quick run of the whole pipeline, reused by the stage tests) and run comparisons."""

import os
import subprocess
import sys

import pytest

from gpt_mini.runlog import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_script(args, **kw):
    """Run a repo script with this interpreter from the repo root; capture its output."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, **kw)


@pytest.fixture(scope="session")
def quick_runs(tmp_path_factory):
    """runs/ of `run_all.py --quick`: pretrain -> sft -> dpo (beta 0.1) -> rlvr, each from the previous."""
    out = tmp_path_factory.mktemp("runs")
    result = run_script(["run_all.py", "--quick", "--runs", str(out), "--no-progress"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


# the train and eval records of two runs, compared (tests/test_ddp_stages.py, tests/test_length_groups.py)
CLOCKS = ("train_seconds", "tokens_per_s")


def curve(folder):
    """The train and eval records of a run, without the clocks."""
    return [{k: v for k, v in r.items() if k not in CLOCKS}
            for r in read_metrics(str(folder / "metrics.jsonl")) if r["split"] in ("train", "eval")]


def assert_same_curve(one, two, tolerance=1e-5, loose=None):
    """Same records, same keys, the same numbers up to float noise (loose: {key: its own absolute tolerance})."""
    loose = loose or {}
    assert [(r["step"], r["split"]) for r in one] == [(r["step"], r["split"]) for r in two]
    for a, b in zip(one, two):
        assert a.keys() == b.keys()
        for k in (k for k in a if k != "split"):
            assert a[k] == pytest.approx(b[k], rel=tolerance, abs=loose.get(k, tolerance), nan_ok=True), \
                (a["step"], a["split"], k)
