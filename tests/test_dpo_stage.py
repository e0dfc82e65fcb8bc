"""03_dpo.py as a whole: frozen reference, cached vs live reference, the sweep's folders and figure."""

import pytest
import torch

from conftest import run_script
from gpt_mini import checkpoint, data
from gpt_mini.losses import dpo_loss
from gpt_mini.metrics import read_metrics, read_summary
from gpt_mini.preference import pair_logps, score_pairs
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
    common = ["03_dpo.py", "--quick", "--init", str(quick_runs / "sft"), "--no-progress", "--steps", "20", "--log-every", "10"]
    assert run_script(common + ["--out", str(tmp_path / "cached")]).returncode == 0
    result = run_script(common + ["--out", str(tmp_path / "live"), "--live-reference"])
    assert result.returncode == 0, result.stderr[-2000:]
    cached = [r for r in read_metrics(str(tmp_path / "cached/beta-0.1/metrics.jsonl")) if r["split"] in ("train", "eval")]
    live = [r for r in read_metrics(str(tmp_path / "live/beta-0.1/metrics.jsonl")) if r["split"] in ("train", "eval")]
    assert len(cached) == len(live) == 5
    for a, b in zip(cached, live):
        assert a.keys() == b.keys()
        for k in (k for k in a if k != "split"):
            # padding differs between the cached pass and the per-step batches: float noise only
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-4), k


def test_score_pairs_is_independent_of_batching(quick_runs):
    enc = load_tokenizer()
    model = checkpoint.model_from_checkpoint(checkpoint.load_checkpoint(str(quick_runs / "sft")))
    pairs = data.encode_pairs(enc, data.data_path("dpo_val.jsonl"), model.config.block_size).examples[:12]
    a = score_pairs(model, pairs, data.pad_id(enc), batch_size=12)
    b = score_pairs(model, pairs, data.pad_id(enc), batch_size=5)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-4)


def test_each_beta_has_its_own_folder_and_the_sweep_draws_one_figure(quick_runs, tmp_path):
    result = run_script(["03_dpo.py", "--quick", "--init", str(quick_runs / "sft"), "--no-progress",
                         "--steps", "10", "--log-every", "10", "--beta", "0.05", "0.5", "--out", str(tmp_path)])
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_summary(str(tmp_path / "beta-0.05"))["beta"] == 0.05
    assert read_summary(str(tmp_path / "beta-0.5"))["beta"] == 0.5
    assert (tmp_path / "beta_sweep.png").stat().st_size > 5000
    table = (tmp_path / "beta_sweep.txt").read_text().splitlines()
    assert len(table) == 3 and table[1].split()[0] == "0.05"
