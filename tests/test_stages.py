"""End to end: the four stage scripts at --quick size on CPU, each loading the previous stage's output.

One pipeline run (run_all.py --quick) is shared by the tests below; each checks a
behaviour the stage was run for, on held-out data, from the files the stage wrote.
"""

import importlib
import math
import os
import runpy
import subprocess
import sys

import pytest
from conftest import ROOT
from conftest import run_script as run

from gpt_mini import checkpoint
from gpt_mini.runlog import read_metrics, read_summary


@pytest.fixture(scope="module")
def runs(quick_runs):
    return quick_runs


def test_every_stage_wrote_checkpoint_metrics_plots_and_report(runs):
    for stage, folder in (("pretrain", "pretrain"), ("sft", "sft"), ("dpo", "dpo/beta-0.1"), ("rlvr", "rlvr")):
        state = checkpoint.load_checkpoint(str(runs / folder), expected_stages=[stage])
        assert state["step"] > 0
        summary = read_summary(str(runs / folder))
        for plot in summary["plots"]:
            assert (runs / folder / plot).stat().st_size > 1000
    report = (runs / "report.md").read_text()
    for title in ("Pretraining", "SFT", "DPO (β = 0.1)", "RLVR"):
        assert title in report


def test_report_shows_where_the_time_went(runs):
    # run_all.py times every whole stage script; the report sets that against each training loop
    report = (runs / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| 0") and ".py |" in line]
    assert [row.split(" | ")[0] for row in rows] == ["| 01_pretrain.py", "| 02_sft.py", "| 03_dpo.py", "| 04_rlvr.py"]
    for row in rows:
        whole, loop = (float(cell.rstrip(" s")) for cell in (row.split(" | ")[1], row.split(" | ")[3]))
        assert 0 <= loop <= whole and whole > 0, row


def test_pretraining_lowers_held_out_loss(runs):
    s = read_summary(str(runs / "pretrain"))
    assert s["held_out_loss"] < s["held_out_loss_before"] - 1.0


def test_sft_lowers_held_out_assistant_loss(runs):
    # (the format, facts and arithmetic gains need the default run; the README quotes it)
    s = read_summary(str(runs / "sft"))
    assert s["after"]["assistant_loss"] < s["before"]["assistant_loss"] - 0.5
    evals = [r for r in read_metrics(str(runs / "sft/metrics.jsonl")) if "assistant_loss" in r]
    assert evals[-1]["assistant_loss"] < evals[0]["assistant_loss"]


def test_dpo_step_zero_is_a_tie_on_every_held_out_pair(runs):
    first = read_metrics(str(runs / "dpo/beta-0.1/metrics.jsonl"))[0]
    assert first["step"] == 0
    assert first["eval/loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert first["eval/rewards/margins"] == pytest.approx(0.0, abs=1e-6)
    assert first["eval/rewards/accuracies"] == 0.0  # every pair is a tie, and ties count as wrong
    assert first["eval/kl"] == pytest.approx(0.0, abs=1e-6)


def test_dpo_quick_run_raises_held_out_preference_accuracy_above_half(runs):
    evals = [r for r in read_metrics(str(runs / "dpo/beta-0.1/metrics.jsonl")) if r["split"] == "eval"]
    assert evals[-1]["eval/rewards/accuracies"] > 0.5
    assert evals[-1]["eval/rewards/margins"] > 0
    train = [r for r in read_metrics(str(runs / "dpo/beta-0.1/metrics.jsonl")) if r["split"] == "train"]
    for key in ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
                "logps/chosen", "logps/rejected", "abs_logratio"):
        assert key in train[-1]


def test_rlvr_logs_what_the_issue_names(runs):
    records = read_metrics(str(runs / "rlvr/metrics.jsonl"))
    train = [r for r in records if r["split"] == "train"]
    for key in ("reward", "reward_std", "no_signal_groups", "kl", "completion_length", "clip_fraction"):
        assert key in train[0]
    evals = [r for r in records if r["split"] == "eval"]
    assert {"greedy_accuracy", "pass@4"} <= set(evals[0])
    # side effects: the behaviours RLVR never trains on, graded before and after
    summary = read_summary(str(runs / "rlvr"))
    for label in ("facts, SFT entities (new wordings)", "known false claims agreed with (sycophancy)",
                  "arithmetic, step by step"):
        assert set(summary["metrics"][label]) == {"before", "after", "pct"}
    assert summary["before"].keys() == summary["after"].keys()


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}/{k}"))
        return out
    return {prefix: value}


def _snapshot(folder):
    """{path: (size, mtime)} of every file under folder, or None when it does not exist."""
    if not os.path.isdir(folder):
        return None
    return {os.path.join(d, f): (os.stat(os.path.join(d, f)).st_size, os.stat(os.path.join(d, f)).st_mtime_ns)
            for d, _, files in os.walk(folder) for f in files}


def test_same_seed_same_numbers_and_every_stage_report_and_chat_use_the_runs_folder(runs, tmp_path):
    # One more quick pipeline, from the checkout as a user runs it, into another runs folder. It checks two
    # things at once (one pipeline run, to keep the suite short):
    # 1. same seed on CPU -> the same numbers, to the precision the report prints (and far beyond:
    #    float32 reductions may differ in the last bits between processes, so 1e-5 relative);
    # 2. each stage (run_all.py hands it --out <runs>/<stage>) updates the report of that folder, and the
    #    checkout's runs/ is neither created nor touched.
    before = _snapshot(os.path.join(ROOT, "runs"))
    my_runs = tmp_path / "my_runs"
    result = run(["run_all.py", "--quick", "--runs", str(my_runs), "--no-progress"])
    assert result.returncode == 0, result.stderr[-2000:]
    for folder in ("pretrain", "sft", "dpo/beta-0.1", "rlvr"):
        a, b = read_summary(str(runs / folder)), read_summary(str(my_runs / folder))
        for key in ("held_out_loss", "metrics", "held_out", "samples"):
            fa, fb = _flatten(a.get(key)), _flatten(b.get(key))
            assert fa.keys() == fb.keys(), (folder, key)
            for k in fa:
                if isinstance(fa[k], float):
                    assert fa[k] == pytest.approx(fb[k], rel=1e-5, abs=1e-6, nan_ok=True), (folder, key, k)
                else:
                    assert fa[k] == fb[k], (folder, key, k)
    assert _snapshot(os.path.join(ROOT, "runs")) == before
    assert sorted(os.listdir(my_runs)) == ["dpo", "lesson_data.js", "pipeline.json", "pretrain", "report.md", "rlvr",
                                           "sft", "summary.png"]
    for title in ("Pretraining", "SFT", "DPO (β = 0.1)", "RLVR"):
        assert title in (my_runs / "report.md").read_text()
    # --out that is not <runs>/<stage>: nothing is written outside it
    result = run(["01_pretrain.py", "--quick", "--no-progress", "--steps", "2", "--out", str(tmp_path / "elsewhere")])
    assert result.returncode == 0 and "no report written" in result.stdout
    assert sorted(os.listdir(tmp_path)) == ["elsewhere", "my_runs"]
    chat = run(["-m", "gpt_mini.chat", "--runs", str(my_runs), "--prompt", "Hi", "--max-new-tokens", "2"])
    assert chat.returncode == 0, chat.stderr[-2000:]
    for folder in ("pretrain", "sft", "dpo/beta-0.1", "rlvr"):
        assert f" {my_runs / folder}]" in chat.stdout, chat.stdout
    assert _snapshot(os.path.join(ROOT, "runs")) == before


def test_resumed_pretraining_continues_the_same_curve(tmp_path):
    full = tmp_path / "full"
    cut = tmp_path / "cut"
    assert run(["01_pretrain.py", "--quick", "--out", str(full), "--no-progress"]).returncode == 0
    # stop after 20 of 40 steps (a checkpoint is written at step 20), then resume to 40
    assert run(["01_pretrain.py", "--quick", "--steps", "40", "--out", str(cut), "--no-progress",
                "--stop-after", "20"]).returncode == 0
    assert checkpoint.load_checkpoint(str(cut))["step"] == 20
    assert run(["01_pretrain.py", "--quick", "--out", str(cut), "--no-progress", "--resume"]).returncode == 0
    a = [r for r in read_metrics(str(full / "metrics.jsonl"))]
    b = [r for r in read_metrics(str(cut / "metrics.jsonl"))]
    def strip(rs):
        return [{k: v for k, v in r.items() if k not in ("tokens_per_s", "train_seconds")} for r in rs]  # clocks

    assert strip(a) == strip(b)


def test_bad_inputs_give_one_sentence_and_a_nonzero_exit(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "short.txt").write_text("just a few words\n\nand a few more")
    (tmp_path / "one_line.txt").write_text("one document of one line " * 50)
    cases = [
        (["01_pretrain.py", "--quick", "--data", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "a")],
         "file not found"),
        (["01_pretrain.py", "--quick", "--data", str(tmp_path / "empty.txt"), "--out", str(tmp_path / "a")], "empty"),
        (["01_pretrain.py", "--quick", "--data", str(tmp_path / "short.txt"), "--out", str(tmp_path / "a")],
         "too short for one window"),
        (["01_pretrain.py", "--quick", "--data", str(tmp_path / "one_line.txt"), "--out", str(tmp_path / "a")],
         "one document of one line, so nothing can be held out for evaluation"),
        (["01_pretrain.py", "--quick", "--out", "/proc/gpt_mini_cannot_write_here"], "cannot write to --out"),
        (["02_sft.py", "--quick", "--init", str(tmp_path / "nope"), "--out", str(tmp_path / "b")], "no checkpoint at"),
        # a bad flag, as a user's shell runs it (every flag: test_every_bad_flag_is_refused_where_it_is_parsed)
        (["03_dpo.py", "--quick", "--beta", "0", "--out", str(tmp_path / "c")],
         "argument --beta: must be a finite number > 0, got '0'"),
    ]
    for args, message in cases:
        result = run(args + ["--no-progress"])
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr[-500:])
        assert "Traceback" not in result.stderr


def test_a_binary_data_file_gets_one_sentence_in_every_stage(quick_runs, tmp_path):
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 4)  # e.g. a checkpoint passed as --data by mistake
    stages = (("01_pretrain.py", None), ("02_sft.py", "pretrain"), ("03_dpo.py", "sft"), ("04_rlvr.py", "sft"))
    for script, init in stages:
        args = [script, "--quick", "--data", str(binary), "--out", str(tmp_path / script), "--no-progress"]
        result = run(args + (["--init", str(quick_runs / init)] if init else []))
        assert result.returncode != 0, script
        assert result.stderr.strip().splitlines() == [
            f"error: {binary}:1: the file looks binary (it has a NUL byte); give a UTF-8 text file"
        ], result.stderr[-2000:]


def test_rlvr_refuses_an_answer_the_verifier_can_never_match(quick_runs, tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"prompt": "What is 2 + 2?", "answer": "4"}\n{"prompt": "What is 2 + 2?", "answer": "four"}\n')
    result = run(["04_rlvr.py", "--quick", "--init", str(quick_runs / "sft"), "--data", str(tasks),
                  "--out", str(tmp_path / "rl"), "--no-progress"])
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: {tasks}:2: 'answer' must be an integer in digits such as \"42\" or \"-7\" (the verifier reads "
        f"nothing else, so every reward would be 0), got 'four'"], result.stderr[-2000:]
    assert not (tmp_path / "rl" / "metrics.jsonl").exists()  # refused before any work


# Every numeric flag of every script, checked where it is parsed. (script, flags, the flag named, the range said)
BAD_FLAGS = [
    ("01_pretrain.py", ["--steps", "0"], "--steps", "an integer >= 1"),
    ("01_pretrain.py", ["--batch-size", "0"], "--batch-size", "an integer >= 1"),
    ("01_pretrain.py", ["--block-size", "16"], "--block-size", "an integer >= 64"),
    ("01_pretrain.py", ["--n-layer", "0"], "--n-layer", "an integer >= 1"),
    ("01_pretrain.py", ["--n-head", "0"], "--n-head", "an integer >= 1"),
    ("01_pretrain.py", ["--n-embd", "-8"], "--n-embd", "an integer >= 1"),
    ("01_pretrain.py", ["--n-embd", "64", "--n-head", "3"], "--n-embd", "a multiple of --n-head"),
    ("01_pretrain.py", ["--lr", "nan"], "--lr", "a finite number > 0"),
    ("01_pretrain.py", ["--lr", "0"], "--lr", "a finite number > 0"),
    ("01_pretrain.py", ["--lr", "inf"], "--lr", "a finite number > 0"),
    ("01_pretrain.py", ["--warmup", "-1"], "--warmup", "an integer >= 0"),
    ("01_pretrain.py", ["--eval-every", "0"], "--eval-every", "an integer >= 1"),
    ("01_pretrain.py", ["--eval-windows", "0"], "--eval-windows", "an integer >= 1"),
    ("01_pretrain.py", ["--stop-after", "0"], "--stop-after", "an integer >= 1"),
    ("01_pretrain.py", ["--seed", "-1"], "--seed", "an integer in [0, 4294967295]"),
    ("01_pretrain.py", ["--seed", "1.5"], "--seed", "an integer in [0, 4294967295]"),
    ("01_pretrain.py", ["--device", "cuda:99"], "--device", "auto or a device this machine has (cpu"),
    ("01_pretrain.py", ["--device", "tpu"], "--device", "auto or a device this machine has (cpu"),
    ("01_pretrain.py", ["--data", ""], "--data", "a path"),
    ("02_sft.py", ["--steps", "-3"], "--steps", "an integer >= 1"),
    ("02_sft.py", ["--batch-size", "0"], "--batch-size", "an integer >= 1"),
    ("02_sft.py", ["--lr=-1e-3"], "--lr", "a finite number > 0"),
    ("02_sft.py", ["--warmup", "-5"], "--warmup", "an integer >= 0"),
    ("02_sft.py", ["--eval-every", "0"], "--eval-every", "an integer >= 1"),
    ("02_sft.py", ["--eval-limit", "0"], "--eval-limit", "an integer >= 1"),
    ("02_sft.py", ["--init", ""], "--init", "a path"),
    ("03_dpo.py", ["--beta", "0"], "--beta", "a finite number > 0"),
    ("03_dpo.py", ["--beta", "-1"], "--beta", "a finite number > 0"),
    ("03_dpo.py", ["--beta", "0.1", "nan"], "--beta", "a finite number > 0"),
    ("03_dpo.py", ["--label-smoothing", "0.5"], "--label-smoothing", "a finite number in [0, 0.5)"),
    ("03_dpo.py", ["--label-smoothing", "-0.1"], "--label-smoothing", "a finite number in [0, 0.5)"),
    ("03_dpo.py", ["--loss", "hinge", "--label-smoothing", "0.1"], "--label-smoothing", "--loss sigmoid only"),
    ("03_dpo.py", ["--rpo-alpha", "-1"], "--rpo-alpha", "a finite number >= 0"),
    ("03_dpo.py", ["--steps", "0"], "--steps", "an integer >= 1"),
    ("03_dpo.py", ["--batch-size", "0"], "--batch-size", "an integer >= 1"),
    ("03_dpo.py", ["--lr", "inf"], "--lr", "a finite number > 0"),
    ("03_dpo.py", ["--warmup", "-1"], "--warmup", "an integer >= 0"),
    ("03_dpo.py", ["--eval-every", "0"], "--eval-every", "an integer >= 1"),
    ("03_dpo.py", ["--log-every", "0"], "--log-every", "an integer >= 1"),
    ("03_dpo.py", ["--eval-limit", "0"], "--eval-limit", "an integer >= 1"),
    ("04_rlvr.py", ["--group-size", "1"], "--group-size", "an integer >= 2"),
    ("04_rlvr.py", ["--steps", "0"], "--steps", "an integer >= 1"),
    ("04_rlvr.py", ["--prompts", "0"], "--prompts", "an integer >= 1"),
    ("04_rlvr.py", ["--temperature", "0"], "--temperature", "a finite number > 0"),
    ("04_rlvr.py", ["--max-new-tokens", "0"], "--max-new-tokens", "an integer >= 1"),
    ("04_rlvr.py", ["--lr", "nan"], "--lr", "a finite number > 0"),
    ("04_rlvr.py", ["--kl", "-0.1"], "--kl", "a finite number >= 0"),
    ("04_rlvr.py", ["--clip-eps", "0"], "--clip-eps", "a finite number > 0"),
    ("04_rlvr.py", ["--inner-epochs", "0"], "--inner-epochs", "an integer >= 1"),
    ("04_rlvr.py", ["--eval-every", "0"], "--eval-every", "an integer >= 1"),
    ("04_rlvr.py", ["--pass-k", "0"], "--pass-k", "an integer >= 1"),
    ("04_rlvr.py", ["--eval-limit", "0"], "--eval-limit", "an integer >= 1"),
    ("run_all.py", ["--device", "gpu"], "--device", "auto or a device this machine has (cpu"),
    ("run_all.py", ["--runs", ""], "--runs", "a path"),
    ("gpt_mini.chat", ["--temperature", "-1"], "--temperature", "a finite number >= 0"),
    ("gpt_mini.chat", ["--max-new-tokens", "0"], "--max-new-tokens", "an integer >= 1"),
    ("gpt_mini.chat", ["--device", "gpu"], "--device", "auto or a device this machine has (cpu"),
    ("gpt_mini.report", ["--runs", "no/such/folder"], "--runs", "an existing runs folder"),
]


@pytest.mark.parametrize("script, flags, flag, allowed", BAD_FLAGS, ids=[" ".join([s, *f]) for s, f, _, _ in BAD_FLAGS])
def test_every_bad_flag_is_refused_where_it_is_parsed(script, flags, flag, allowed, tmp_path, monkeypatch, capsys):
    # The scripts parse their flags first, so running them in this process stops right there (fast).
    # --quick, --out and --init in tmp: if a check were missing, the run would stay small and write only there.
    extra = {"01_pretrain.py": ["--quick", "--out", str(tmp_path / "out")],
             "run_all.py": ["--quick", "--runs", str(tmp_path / "runs")]}.get(script, [])
    if script in ("02_sft.py", "03_dpo.py", "04_rlvr.py"):
        extra = ["--quick", "--out", str(tmp_path / "out"), "--init", str(tmp_path / "none")]
    monkeypatch.setattr(sys, "argv", [script, *extra, *flags])
    monkeypatch.chdir(tmp_path)  # and a relative path lands in tmp too
    with pytest.raises(SystemExit) as stop:
        if script.endswith(".py"):
            runpy.run_path(os.path.join(ROOT, script), run_name="__main__")
        else:
            importlib.import_module(script).main()
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    last = err.strip().splitlines()[-1]  # argparse's usage lines, then one sentence
    assert "error:" in last and flag in last and allowed in last, last
    assert "Traceback" not in err
    assert os.listdir(tmp_path) == []  # nothing was written


def test_ddp_on_cpu_with_two_processes(tmp_path):
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
                             "01_pretrain.py", "--quick", "--out", str(tmp_path / "ddp"), "--no-progress"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    s = read_summary(str(tmp_path / "ddp"))
    assert s["world_size"] == 2 and s["held_out_loss"] < s["held_out_loss_before"]
    assert checkpoint.load_checkpoint(str(tmp_path / "ddp"))["step"] == 40


def test_rlvr_quick_run_raises_mean_reward_on_an_easy_task(quick_runs, tmp_path):
    # An easy task for the tiny --quick model: the reward is 1 when the last number it writes is 1.
    # Some samples already earn it by chance, so a group carries signal and RL can raise the rate.
    import json
    tasks = tmp_path / "easy.jsonl"
    tasks.write_text("".join(json.dumps({"prompt": f"Say the number one. ({i})", "answer": "1"}) + "\n"
                             for i in range(50)))
    result = run(["04_rlvr.py", "--quick", "--init", str(quick_runs / "sft"), "--data", str(tasks),
                  "--out", str(tmp_path / "rl"), "--steps", "40", "--lr", "1e-3", "--prompts", "4", "--group-size", "8",
                  "--eval-every", "40", "--no-progress"])
    assert result.returncode == 0, result.stderr[-2000:]
    rewards = [r["reward"] for r in read_metrics(str(tmp_path / "rl/metrics.jsonl")) if r["split"] == "train"]
    assert len(rewards) == 40
    first, last = sum(rewards[:10]) / 10, sum(rewards[-10:]) / 10
    assert last > first + 0.2, (first, last)


def test_rlvr_reference_runs_under_the_policy_autocast(quick_runs, tmp_path):
    # bf16 autocast forced on (the code path of a GPU, on CPU): at the first step policy = reference,
    # so with the reference under the same autocast as the policy the KL to it is exactly 0.
    result = run(["04_rlvr.py", "--quick", "--init", str(quick_runs / "sft"), "--out", str(tmp_path / "rl"),
                  "--steps", "1", "--inner-epochs", "1", "--eval-every", "1", "--eval-limit", "2", "--no-progress"],
                 env={**os.environ, "GPT_MINI_FORCE_AUTOCAST": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    first = next(r for r in read_metrics(str(tmp_path / "rl/metrics.jsonl")) if r["split"] == "train")
    assert first["kl"] == 0.0 and first["ratio_mean"] == 1.0
