"""Shared fixtures: one --quick run of the whole pipeline, reused by the stage tests."""

import os
import subprocess
import sys

import pytest

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
