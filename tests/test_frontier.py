"""A point on the reward-KL frontier: sequence KL from replies sampled at T = 1, and their true reward."""

import copy
import os

import torch

from gpt_mini import frontier
from gpt_mini.data import data_path, load_jsonl
from gpt_mini.model import GPT, GPTConfig
from gpt_mini.tokenizer import load_tokenizer


def _claims(n=6):
    opinions = [c for c in load_jsonl(data_path("eval_claims.jsonl")) if c["stance"] == "opinion"]
    return [c for c in opinions if c["wording"] == "train"][:n // 2] + [c for c in opinions
                                                                      if c["wording"] == "heldout"][:n // 2]


def _model():
    enc = load_tokenizer()
    torch.manual_seed(0)
    return enc, GPT(GPTConfig(vocab_size=enc.n_vocab, block_size=64, n_layer=1, n_head=2, n_embd=16)).eval()


def test_at_step_0_every_method_is_the_reference_and_its_kl_is_exactly_0():
    enc, reference = _model()
    policy = copy.deepcopy(reference)  # a second copy of the same weights, as each method starts
    point = frontier.measure_point(policy, reference, enc, _claims(), samples_per_prompt=2, max_new_tokens=8)
    assert point["kl"] == 0.0
    assert 0 <= point["reward_train_wordings"] <= 1 and 0 <= point["reward_heldout_wordings"] <= 1


def test_the_kl_is_the_mean_summed_log_ratio_of_the_sampled_replies():
    enc, reference = _model()
    policy = copy.deepcopy(reference)
    with torch.no_grad():
        policy.wte.weight.mul_(3.0)  # a sharper policy: it moved
    point = frontier.measure_point(policy, reference, enc, _claims(), samples_per_prompt=3, max_new_tokens=8)
    again = frontier.measure_point(policy, reference, enc, _claims(), samples_per_prompt=3, max_new_tokens=8)
    assert point == again  # the same seed draws the same samples
    assert point["kl"] > 0  # a Monte Carlo estimate of KL(pi || ref) for a policy that moved


def test_with_frontier_every_evaluation_gains_a_point_and_step_0_has_kl_0(tmp_path, monkeypatch):
    """--frontier in a stage script: frontier.tracked wraps its held-out evaluation; without the flag it is
    the evaluation itself."""
    import argparse

    from gpt_mini import checkpoint
    enc, reference = _model()
    checkpoint.save_checkpoint(str(tmp_path / "model.pt"), reference, "sft", 1)
    policy = copy.deepcopy(reference)
    monkeypatch.setattr(frontier, "known_claim_prompts", lambda *a, **k: _claims())  # a tiny model knows no fact

    def held_out(step):
        return {"eval/loss": 0.5}
    args = argparse.Namespace(frontier=None, init=str(tmp_path), eval_limit=None, seed=0, quick=False)
    assert frontier.tracked(held_out, args, policy, enc, "cpu") is held_out
    args.frontier = 0  # --frontier with no N: every opinion claim
    record = frontier.tracked(held_out, args, policy, enc, "cpu")(0)
    assert record["eval/loss"] == 0.5 and record["frontier/kl"] == 0.0
    assert set(record) == {"eval/loss", "frontier/kl", "frontier/prompts", "frontier/samples",
                           "frontier/reward_train_wordings",
                           "frontier/reward_heldout_wordings"}


def test_the_frontier_command_runs_every_method_from_the_sft_model(quick_runs, tmp_path):
    """python -m gpt_mini.frontier --quick: every method trains from runs/sft with --frontier; frontier.json holds
    one record per point, each run starts at the SFT model (step 0, KL exactly 0); the figure, the cost table and
    the report's section are written."""
    import json
    import shutil

    from conftest import run_script
    runs = tmp_path / "runs"
    shutil.copytree(quick_runs / "sft", runs / "sft")
    result = run_script(["-m", "gpt_mini.frontier", "--runs", str(runs), "--quick", "--jobs", "2"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(runs / "frontier" / "frontier.json") as f:
        out = json.load(f)
    methods = ["DPO", "SimPO", "ORPO", "Preferred-FT", "RLHF", "PPO-GT"]
    assert sorted({r["method"] for r in out["runs"]}) == sorted(methods)
    assert len([r for r in out["runs"] if r["method"] == "DPO"]) >= 2  # several strengths
    assert all(r["status"] == "finished" for r in out["runs"])
    for run in out["runs"]:
        steps = [p["step"] for p in run["points"]]
        assert steps[0] == 0 and steps == sorted(steps) and len(steps) >= 2  # evaluated every N steps from step 0
        assert run["points"][0]["kl"] == 0.0  # at step 0 every method is the SFT model
        for p in run["points"]:
            assert {"method", "setting", "step", "kl", "reward_train_wordings", "reward_heldout_wordings"} <= set(p)
            assert 0 <= p["reward_train_wordings"] <= 1 and 0 <= p["reward_heldout_wordings"] <= 1
            assert ("reward_model" in p) == (run["method"] == "RLHF")  # the learned reward where one exists
    assert len(out["points"]) == sum(len(r["points"]) for r in out["runs"])
    cost = {c["method"]: c for c in out["cost"]}
    assert list(cost) == methods
    assert cost["DPO"]["sampled_tokens"] == 0 and cost["RLHF"]["sampled_tokens"] > 0  # only RL samples
    assert cost["RLHF"]["models_in_memory"].startswith("3") and cost["SimPO"]["models_in_memory"].startswith("1")
    assert cost["RLHF"]["forward_sequences_per_step"] > cost["PPO-GT"]["forward_sequences_per_step"]  # + the RM
    assert os.path.getsize(runs / "frontier" / "frontier.png") > 10_000
    assert not (runs / "frontier" / "report.md").exists()  # the stages do not write a report card into it
    assert (runs / "frontier" / "DPO" / "beta-0.1" / "model.pt").exists()
    report = (runs / "report.md").read_text()
    assert "reward-KL frontier" in report and "| RLHF | KL coef. 0.02 | finished |" in report
    lessons = (runs / "lesson_data.js").read_text()
    assert '"frontier"' in lessons and '"best setting of each method (last point)"' in lessons

    # --collect-only trains nothing and rebuilds the same points from the runs' files
    (runs / "frontier" / "frontier.png").unlink()
    again = run_script(["-m", "gpt_mini.frontier", "--runs", str(runs), "--quick", "--collect-only"])
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    with open(runs / "frontier" / "frontier.json") as f:
        rebuilt = json.load(f)
    assert rebuilt["points"] == out["points"] and rebuilt["wall_minutes"] == out["wall_minutes"]
    assert [r["status"] for r in rebuilt["runs"]] == [r["status"] for r in out["runs"]]
    assert (runs / "frontier" / "frontier.png").exists()


def test_the_band_gives_mean_and_range_of_each_runs_last_point():
    from gpt_mini.frontier_experiment import band_markdown

    def result(kl, reward):
        first = {"step": 0, "kl": 0.0, "reward_train_wordings": 0.5, "reward_heldout_wordings": 0.5}
        last = {"step": 400, "kl": kl, "reward_train_wordings": reward, "reward_heldout_wordings": reward - 0.1}
        return {"runs": [{"method": "DPO", "setting": "β 0.1", "points": [first, last]},
                         {"method": "ORPO", "setting": "β 1", "points": [first]}]}
    lines = band_markdown([result(3.0, 0.9), result(2.0, 0.8), result(1.0, 0.7)], ["runs", "s1", "s2"])
    assert "| SFT (step 0) | | 0.000 (0.000 to 0.000) | 0.500 (0.500 to 0.500) | 0.500 (0.500 to 0.500) |" in lines
    assert "| DPO | β 0.1 | 2.000 (1.000 to 3.000) | 0.800 (0.700 to 0.900) | 0.700 (0.600 to 0.800) |" in lines


def test_the_frontier_command_says_what_is_missing(tmp_path):
    from conftest import run_script
    result = run_script(["-m", "gpt_mini.frontier", "--runs", str(tmp_path)])
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error:") and "sft/model.pt is missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_run_stopped_by_a_nan_loss_counts_as_diverged_and_runs_that_need_it_are_skipped(tmp_path):
    from gpt_mini.frontier_experiment import Run, run_all
    nan = tmp_path / "nan.py"
    nan.write_text('import sys\nprint("error: the loss became nan at step 3; stopping")\nsys.exit(1)\n')
    crash = tmp_path / "crash.py"
    crash.write_text("raise RuntimeError('a bug')\n")
    ok = tmp_path / "ok.py"
    ok.write_text("print('done')\n")
    todo = [Run("reward model", "", str(nan), str(tmp_path / "rm"), []),
            Run("RLHF", "KL coef. 0", str(ok), str(tmp_path / "rlhf"), [], needs=str(tmp_path / "rm")),
            Run("DPO", "β 0.1", str(ok), str(tmp_path / "dpo"), []),
            Run("ORPO", "β 1", str(crash), str(tmp_path / "orpo"), [])]
    run_all(todo, str(tmp_path / "logs"), jobs=2)
    assert [r.status for r in todo] == ["diverged", "skipped", "finished", "failed"]


def test_the_full_plan_runs_every_method_at_several_strengths_and_the_reward_hacking_control(tmp_path):
    from gpt_mini.frontier_experiment import WEAK_RLHF, plan
    todo = plan(str(tmp_path), str(tmp_path / "frontier"))
    settings = {}
    for run in todo:
        settings.setdefault(run.method, []).append(run.setting)
    assert len(settings["DPO"]) >= 4 and len(settings["RLHF"]) >= 3 + 1
    assert all(len(settings[m]) >= 2 for m in ("SimPO", "ORPO", "Preferred-FT", "PPO-GT"))  # several strengths
    by_out = {r.out: r for r in todo}
    weak = next(r for r in todo if r.setting == WEAK_RLHF)
    assert "--steps" in by_out[weak.needs].flags and by_out[weak.needs].flags[
        by_out[weak.needs].flags.index("--steps") + 1] == "30"                       # a weak reward model
    assert weak.flags[weak.flags.index("--kl") + 1] == "0"                            # no KL penalty
    assert todo.index(by_out[weak.needs]) < todo.index(weak)
    for run in todo:
        if run.script != "train_reward_model.py":
            assert "--frontier" in run.flags and run.flags[run.flags.index("--init") + 1] == str(tmp_path / "sft")
        if run.method == "RLHF":
            assert run.needs in by_out and by_out[run.needs].script == "train_reward_model.py"
