"""The report's band over seeds: mean and range of the headline figures across runs folders."""
import json

from gpt_mini import report


def _fake_runs(folder, agreed, loss, minutes):
    for stage in ("sft", "dpo/beta-0.1", "rlvr"):
        (folder / stage).mkdir(parents=True)
        (folder / stage / "summary.json").write_text(json.dumps(
            {"stage": stage, "after": {"claims_false_agreed": agreed, "arith_cot": 0.9},
             "metrics": {"held-out greedy accuracy": {"before": 0.5, "after": 0.75, "pct": True}}}))
    (folder / "pretrain").mkdir()
    (folder / "pretrain" / "summary.json").write_text(json.dumps({"stage": "pretrain", "held_out_loss": loss}))
    (folder / "pipeline.json").write_text(json.dumps({"total_wall_time_s": 60 * minutes}))


def test_band_gives_mean_and_range_per_figure(tmp_path):
    for name, agreed, loss, minutes in (("s0", 0.02, 0.5, 13.0), ("s1", 0.08, 0.6, 14.0), ("s2", 0.05, 0.7, 15.0)):
        _fake_runs(tmp_path / name, agreed, loss, minutes)
    (tmp_path / "s0" / "band.json").write_text(json.dumps({"folders": [str(tmp_path / "s1"), str(tmp_path / "s2")]}))
    lines = report._band(str(tmp_path / "s0"))
    row = next(line for line in lines if line.startswith("| DPO β = 0.1: known false claims agreed with"))
    assert row.rstrip(" |").split(" | ")[1:6] == ["5.0 %", "2.0 % to 8.0 %", "2.0 %", "8.0 %", "5.0 %"]
    assert "| pretrain: held-out loss (nats/token) | 0.600 | 0.500 to 0.700 |" in "\n".join(lines)
    assert "| run_all.py wall time (min) | 14.0 | 13.0 to 15.0 |" in "\n".join(lines)
    # a figure no folder has is left out, not shown as a row of dashes
    assert not any("neutral checks" in line for line in lines)


def test_no_band_json_means_no_band_section(tmp_path):
    _fake_runs(tmp_path / "s0", 0.02, 0.5, 13.0)
    assert report._band(str(tmp_path / "s0")) == []
