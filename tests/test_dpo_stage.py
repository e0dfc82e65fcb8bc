"""03_dpo.py as a whole: frozen reference, cached vs live reference, the sweep's folders and figure."""

import math

import pytest
import torch
from conftest import run_script

from gpt_mini import checkpoint, data
from gpt_mini.losses import dpo_loss
from gpt_mini.preference import pair_logps, score_pairs
from gpt_mini.runlog import read_metrics, read_summary
from gpt_mini.tokenizer import load_tokenizer


def test_reference_parameters_never_change_during_training(quick_runs):
    enc = load_tokenizer()
    state = checkpoint.load_checkpoint(str(quick_runs / "sft"))
    policy = checkpoint.model_from_checkpoint(state)
    reference = checkpoint.model_from_checkpoint(state)
    reference.eval().requires_grad_(False)
    before = {n: p.clone() for n, p in reference.state_dict().items()}
    pairs = data.encode_pairs(enc, data.data_path("dpo_val.jsonl"), policy.config.block_size).examples[:8]
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    input_ids, mask, _ = data.pair_batch(pairs, data.pad_id(enc))
    for _ in range(3):
        policy_chosen, policy_rejected, _ = pair_logps(policy, input_ids, mask)
        with torch.no_grad():
            ref_chosen, ref_rejected, _ = pair_logps(reference, input_ids, mask)
        loss, _, _ = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(p.grad is None and not p.requires_grad for p in reference.parameters())
    for n, p in reference.state_dict().items():
        assert torch.equal(p, before[n]), n
    assert any(not torch.equal(p, before[n]) for n, p in policy.state_dict().items())  # the policy did move


def test_cached_and_live_reference_give_the_same_numbers(quick_runs, tmp_path):
    common = ["03_dpo.py", "--quick", "--init", str(quick_runs / "sft"), "--no-progress",
              "--steps", "20", "--eval-every", "10", "--eval-limit", "4"]
    assert run_script(common + ["--out", str(tmp_path / "cached")]).returncode == 0
    result = run_script(common + ["--out", str(tmp_path / "live"), "--live-reference"])
    assert result.returncode == 0, result.stderr[-2000:]
    cached = [r for r in read_metrics(str(tmp_path / "cached/beta-0.1/metrics.jsonl"))
              if r["split"] in ("train", "eval")]
    live = [r for r in read_metrics(str(tmp_path / "live/beta-0.1/metrics.jsonl"))
            if r["split"] in ("train", "eval")]
    assert len(cached) == len(live) == 5
    first_window_pairs = 10 * 8  # --eval-every 10 steps of --quick's 8 pairs
    for a, b in zip(cached, live):
        assert a.keys() == b.keys()
        for k in (k for k in a if k not in ("split", "train_seconds")):  # train_seconds: a clock
            # padding differs between the cached pass and the per-step batches: float noise only
            tolerance = 1e-4
            if k == "rewards/accuracies" and a["split"] == "train" and a["step"] == 10:
                # at step 1 the policy IS the reference: live margins are exactly 0 (ties, counted wrong),
                # cached ones are float noise around 0 (measured: -1.9e-7), so one such pair can count as a
                # win; a tie broken by noise, not a different number (every later window must agree)
                tolerance = 1 / first_window_pairs + 1e-9
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=tolerance), k


def test_score_pairs_is_independent_of_batching(quick_runs):
    enc = load_tokenizer()
    model = checkpoint.model_from_checkpoint(checkpoint.load_checkpoint(str(quick_runs / "sft")))
    pairs = data.encode_pairs(enc, data.data_path("dpo_val.jsonl"), model.config.block_size).examples[:12]
    a = score_pairs(model, pairs, data.pad_id(enc), batch_size=12)
    b = score_pairs(model, pairs, data.pad_id(enc), batch_size=5)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-4)


def test_each_beta_has_its_own_folder_and_the_sweep_draws_one_figure(quick_runs, tmp_path):
    # into a folder where earlier runs left folders it cannot use (a `--beta 0` of old, a killed run, ...)
    skipped = _leftovers(tmp_path, read_summary(str(quick_runs / "dpo" / "beta-0.1")))
    result = run_script(["03_dpo.py", "--quick", "--init", str(quick_runs / "sft"), "--no-progress",
                         "--steps", "10", "--log-every", "10", "--beta", "0.05", "0.5", "--out", str(tmp_path)])
    # (--log-every: the old name of --eval-every still works)
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_summary(str(tmp_path / "beta-0.05"))["beta"] == 0.05
    assert read_summary(str(tmp_path / "beta-0.5"))["beta"] == 0.5
    assert (tmp_path / "beta_sweep.png").stat().st_size > 5000
    table = (tmp_path / "beta_sweep.txt").read_text().splitlines()
    assert len(table) == 3 + len(skipped) and table[1].split()[0] == "0.05" and table[2].split()[0] == "0.5"
    assert table[3:] == [f"skipped {why}" for why in skipped] and "skipped beta-0 (" in result.stdout


def _leftovers(dpo_dir, good_summary):
    """Folders an earlier run (or a crash) may leave in runs/dpo/: none of them is a usable beta run."""
    import json
    for name, summary in (("beta-0", {**good_summary, "beta": 0.0}),      # what `03_dpo.py --beta 0` used to write
                          ("beta--1", {**good_summary, "beta": -1.0}),
                          ("beta-0.3", {**good_summary, "held_out": {}})):
        (dpo_dir / name).mkdir(parents=True)
        (dpo_dir / name / "summary.json").write_text(json.dumps(summary))
    (dpo_dir / "beta-0.7").mkdir()                                        # killed before its summary
    (dpo_dir / "beta-0.9").mkdir()
    (dpo_dir / "beta-0.9" / "summary.json").write_text('{"beta": 0.9, "held_')  # cut short
    return ["beta--1 (beta -1.0 is not a number > 0)", "beta-0 (beta 0.0 is not a number > 0)",
            "beta-0.3 (its summary has no 'held_out' numbers)", "beta-0.7 (no summary.json: an unfinished run?)",
            "beta-0.9 (summary.json is not readable: JSONDecodeError)"]


def test_leftover_folders_never_break_the_sweep_figure_or_the_report(quick_runs, tmp_path):
    import shutil

    from gpt_mini import report, sweep
    runs = tmp_path / "runs"
    shutil.copytree(quick_runs / "dpo" / "beta-0.1", runs / "dpo" / "beta-0.1")
    good = read_summary(str(runs / "dpo" / "beta-0.1"))
    shutil.copytree(runs / "dpo" / "beta-0.1", runs / "dpo" / "beta-0.5")
    (runs / "dpo" / "beta-0.5" / "summary.json").write_text(__import__("json").dumps({**good, "beta": 0.5}))
    skipped = _leftovers(runs / "dpo", good)
    found, why = sweep.beta_runs(str(runs / "dpo"))
    assert [s["beta"] for _, s in found] == [0.1, 0.5] and why == skipped
    path, table = sweep.plot_beta_sweep(str(runs / "dpo"))
    lines = table.splitlines()
    assert [line.split()[0] for line in lines[1:3]] == ["0.1", "0.5"]
    assert lines[3:] == [f"skipped {s}" for s in skipped]
    text = (runs / "report.md").read_text() if report.write_report(str(runs)) else ""
    assert "3 · DPO (β = 0.1)" in text and "3 · DPO (β = 0.5)" in text and "β = 0.0" not in text
    assert "DPO folders left out (they are not finished β runs): " + "; ".join(skipped) + "." in text


def test_autocast_is_bf16_on_cuda_and_can_be_forced_on_for_cpu(monkeypatch):
    from gpt_mini import runtime
    monkeypatch.delenv(runtime.FORCE_AUTOCAST_ENV, raising=False)
    with runtime.autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setenv(runtime.FORCE_AUTOCAST_ENV, "1")
    with runtime.autocast("cpu"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert torch.nn.Linear(4, 4)(torch.ones(2, 4)).dtype == torch.bfloat16


def test_under_autocast_the_cached_reference_is_the_policy_at_step_0(quick_runs, tmp_path):
    # The code path of a GPU, on CPU: bf16 autocast forced on. The policy runs under autocast in the loop,
    # so the cached reference must too; then at step 0 (policy = reference) the first batch's loss is
    # log 2 and its margin 0, with the cache as with the live reference. (With an fp32 cache: 1e-4 off.)
    import os
    env = {**os.environ, "GPT_MINI_FORCE_AUTOCAST": "1"}
    common = ["03_dpo.py", "--quick", "--init", str(quick_runs / "sft"), "--no-progress", "--steps", "1",
              "--eval-every", "1", "--rpo-alpha", "0", "--eval-limit", "4"]
    firsts = {}
    for name in ("cached", "live"):
        result = run_script(common + ["--out", str(tmp_path / name)] + ["--live-reference"] * (name == "live"), env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        records = read_metrics(str(tmp_path / name / "beta-0.1/metrics.jsonl"))
        assert records[0]["step"] == 0 and records[0]["eval/loss"] == pytest.approx(0.6931471805599453, abs=1e-6)
        assert records[0]["eval/rewards/margins"] == 0.0
        firsts[name] = next(r for r in records if r["split"] == "train")
        assert firsts[name]["loss"] == pytest.approx(0.6931471805599453, abs=1e-5), name
        assert firsts[name]["rewards/margins"] == pytest.approx(0.0, abs=1e-5), name
    for key in ("loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"):
        assert firsts["cached"][key] == pytest.approx(firsts["live"][key], abs=1e-5), key


@pytest.mark.parametrize("loss", ["simpo", "orpo"])
def test_reference_free_losses_train_from_the_stage_script(quick_runs, tmp_path, loss):
    result = run_script(["03_dpo.py", "--quick", "--init", str(quick_runs / "sft"), "--no-progress", "--loss", loss,
                         "--steps", "6", "--eval-every", "3", "--eval-limit", "4", "--out", str(tmp_path)])
    assert result.returncode == 0, result.stderr[-2000:]
    summary = read_summary(str(tmp_path / "beta-0.1"))
    assert summary["loss_type"] == loss
    train = [r for r in read_metrics(str(tmp_path / "beta-0.1" / "metrics.jsonl")) if r["split"] == "train"]
    assert [r["step"] for r in train] == [3, 6] and all(math.isfinite(r["loss"]) for r in train)
    # no reference in the loss: at step 0 the margin is already the policy's own preference, not 0
    assert summary["metrics"]["held-out reward margin"]["before"] != 0
