"""Every post-training stage under torchrun: the same algorithm at any number of processes.

On CPU (gloo), 2 processes with --batch-size B/2 (RL: --prompts P/2) each must train exactly what 1 process
with B trains: the global batch of a step depends on (seed, step) only and the ranks split it, token means
divide by the global batch's count, and RL draws each sample from its own (seed, step, index) stream.
So the two runs log the same loss curves, up to the float noise of batching rows differently.
"""

import math
import os
import subprocess
import sys

import torch
from conftest import ROOT, assert_same_curve, curve, run_script

from gpt_mini import checkpoint
from gpt_mini.runlog import read_summary

LOG_2 = torch.tensor(math.log(2), dtype=torch.float32).item()  # the DPO loss at margin 0, in float32


def torchrun(nproc, args):
    """A stage script on nproc CPU processes (gloo), on a free port of its own."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_sft_on_two_processes_matches_one(quick_runs, tmp_path):
    # quick_runs/sft is `02_sft.py --quick` on one process: 8 conversations a step
    result = torchrun(2, ["02_sft.py", "--quick", "--init", str(quick_runs / "pretrain"), "--batch-size", "4",
                          "--out", str(tmp_path), "--no-progress"])
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = curve(quick_runs / "sft"), curve(tmp_path)
    assert [r["step"] for r in two if r["split"] == "train"] == [10, 20, 30]
    assert_same_curve(one, two)
    assert two[-1]["assistant_loss"] < two[0]["assistant_loss"] - 0.5  # it did train
    assert read_summary(str(tmp_path))["world_size"] == 2
    assert checkpoint.load_checkpoint(str(tmp_path), expected_stages=["sft"])["step"] == 30


def test_dpo_on_two_processes_matches_one(quick_runs, tmp_path):
    # quick_runs/dpo/beta-0.1 is `03_dpo.py --quick` on one process: 8 pairs a step, 40 steps, logged every 20
    result = torchrun(2, ["03_dpo.py", "--quick", "--init", str(quick_runs / "sft"), "--batch-size", "4",
                          "--out", str(tmp_path), "--no-progress"])
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = curve(quick_runs / "dpo" / "beta-0.1"), curve(tmp_path / "beta-0.1")
    for records in (one, two):  # at step 0 the policy is the reference: loss log 2 and margin 0, exactly
        assert records[0]["step"] == 0
        assert records[0]["eval/loss"] == LOG_2 and records[0]["eval/rewards/margins"] == 0.0
    # the reference's cached log-probs are float noise around the policy's at step 1 (other padding), so a tie
    # there may count as a win on one side: one pair of the first window's 20 x 8
    assert_same_curve(one, two, loose={"rewards/accuracies": 1 / 160 + 1e-9})
    margins = [r["eval/rewards/margins"] for r in two if r["split"] == "eval"]
    assert margins[2] > margins[1] > margins[0] == 0  # it did train
    summary = read_summary(str(tmp_path / "beta-0.1"))
    assert summary["world_size"] == 2 and summary["held_out"]["eval/loss"] < LOG_2


def test_rlvr_on_two_processes_matches_one(quick_runs, tmp_path):
    # RL needs a reward the --quick model sometimes earns: the last number it writes is 1 (as in test_stages)
    import json
    tasks = tmp_path / "easy.jsonl"
    tasks.write_text("".join(json.dumps({"prompt": f"Say the number one. ({i})", "answer": "1"}) + "\n"
                             for i in range(50)))
    common = ["04_rlvr.py", "--quick", "--init", str(quick_runs / "sft"), "--data", str(tasks), "--group-size", "8",
              "--lr", "1e-3", "--steps", "6", "--eval-every", "6", "--eval-limit", "4", "--no-progress"]
    # one process under torchrun too: there each sample has its own random stream (plain python keeps one)
    for nproc, prompts in ((1, 4), (2, 2)):
        result = torchrun(nproc, common + ["--prompts", str(prompts), "--out", str(tmp_path / f"x{nproc}")])
        assert result.returncode == 0, result.stderr[-3000:]
    one, two = curve(tmp_path / "x1"), curve(tmp_path / "x2")
    train_one, train_two = ([r for r in c if r["split"] == "train"] for c in (one, two))
    # the same samples: the rewards and lengths agree exactly, not only up to float noise
    for key in ("reward", "no_signal_groups", "completion_length"):
        assert [r[key] for r in train_one] == [r[key] for r in train_two], key
    assert any(r["reward"] > 0 for r in train_two) and train_two[-1]["kl"] > 0  # a signal, and the policy moved
    assert_same_curve(one, two, tolerance=1e-5)
    assert read_summary(str(tmp_path / "x2"))["world_size"] == 2


def test_a_dpo_sweep_is_refused_under_torchrun(tmp_path):
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "1"}  # what torchrun sets
    result = run_script(["03_dpo.py", "--beta", "0.1", "0.5", "--out", str(tmp_path)], env=env)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "error: a --beta sweep does not run under torchrun; run one --beta per torchrun command")


def test_run_all_validates_nproc_and_launches_torchrun():
    for bad in ("0", "two"):
        result = run_script(["run_all.py", "--nproc", bad])
        assert result.returncode == 2
        assert result.stderr.strip().splitlines()[-1] == \
            f"run_all.py: error: argument --nproc: must be an integer >= 1, got '{bad}'"
    sys.path.insert(0, ROOT)
    try:
        import run_all
    finally:
        sys.path.remove(ROOT)
    assert run_all.launcher(1) == []  # one process: plain python, as ever
    assert run_all.launcher(3) == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=3"]
