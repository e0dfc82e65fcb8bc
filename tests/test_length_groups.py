"""Grouping a batch by length computes less padding and the same numbers (issue 21).

With --group-by-length, 02_sft.py and 03_dpo.py score the rows of a padded batch in up to three groups of
similar length (logprobs.response_token_logps_by_length), computing the tied head only where a target is
scored. They must give the log-probs, the loss and the gradient of the whole padded batch, up to
floating-point order.
"""

import random

import pytest
import torch
from conftest import assert_same_curve, curve, run_script

from gpt_mini import data
from gpt_mini.logprobs import length_groups, response_token_logps_by_length
from gpt_mini.losses import masked_nll
from gpt_mini.model import GPT, GPTConfig
from gpt_mini.preference import pair_logps, pair_logps_by_length


def padded_positions(lengths, groups):
    return sum(len(g) * max(lengths[i] for i in g) for g in groups)


def test_length_groups_cover_the_batch_once_and_cut_at_the_best_place():
    lengths = [10, 100, 12, 95, 11, 98]
    groups = length_groups(lengths)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert [sorted(g) for g in groups] == [[0, 2, 4], [1, 3, 5]]  # the short three, then the long three
    assert padded_positions(lengths, groups) == 3 * 12 + 3 * 100  # against 6 * 100 in one block


def test_length_groups_keep_one_group_when_a_cut_saves_little():
    assert length_groups([50, 52, 55, 49]) == [[3, 0, 1, 2]]
    assert length_groups([7]) == [[0]]


def test_length_groups_are_optimal_for_two_groups():
    rng = random.Random(0)
    for _ in range(50):
        lengths = [rng.randint(5, 120) for _ in range(rng.randint(2, 12))]
        groups = length_groups(lengths, max_groups=2, min_saving=0.0)
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        best = min(padded_positions(lengths, [order[:k], order[k:]] if k else [order]) for k in range(len(order)))
        assert padded_positions(lengths, groups) == best


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=50, block_size=64, n_layer=2, n_head=2, n_embd=16))


def conversation(rng, length):
    ids = [rng.randrange(1, 50) for _ in range(length)]
    prompt = rng.randint(1, length - 1)
    return {"ids": ids, "mask": [0] * prompt + [1] * (length - prompt)}


def test_sft_rows_grouped_by_length_give_the_whole_batchs_loss_and_gradient():
    rng = random.Random(1)
    batch = [conversation(rng, n) for n in (6, 40, 7, 38, 9, 41, 5, 8)]
    model = tiny_model()
    input_ids, mask = data.pad_batch(batch, pad_id=0)
    whole = masked_nll(model(input_ids), input_ids, mask)
    whole.backward()
    whole_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    lengths = [len(e["ids"]) for e in batch]
    groups = length_groups(lengths)
    assert len(groups) == 2 and sum(len(g) * max(lengths[i] for i in g) for g in groups) < input_ids.numel()
    per_token_logps, target_mask = response_token_logps_by_length(model, input_ids, mask)
    assert torch.equal(target_mask, mask[:, 1:].bool()) and not per_token_logps[~target_mask].any()
    grouped = -per_token_logps.sum() / mask[:, 1:].sum()  # 02_sft.py --group-by-length
    assert abs(grouped.item() - whole.item()) < 1e-5
    grouped.backward()
    for p, g in zip(model.parameters(), whole_grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)


def test_dpo_rows_grouped_by_length_give_pair_logps_and_its_gradient():
    rng = random.Random(2)
    pairs = []
    for prompt_len, chosen_len, rejected_len in ((4, 3, 20), (25, 12, 4), (5, 6, 7), (30, 20, 18)):
        prompt = [rng.randrange(1, 50) for _ in range(prompt_len)]
        pairs.append({"prompt_ids": prompt, "chosen_ids": [rng.randrange(1, 50) for _ in range(chosen_len)],
                      "rejected_ids": [rng.randrange(1, 50) for _ in range(rejected_len)]})
    input_ids, mask, _ = data.pair_batch(pairs, pad_id=0)
    model = tiny_model()
    chosen, rejected, _ = pair_logps(model, input_ids, mask)
    (chosen.sum() - 2 * rejected.sum()).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    grouped_chosen, grouped_rejected = pair_logps_by_length(model, input_ids, mask)
    torch.testing.assert_close(grouped_chosen, chosen, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grouped_rejected, rejected, rtol=1e-5, atol=1e-5)
    (grouped_chosen.sum() - 2 * grouped_rejected.sum()).backward()
    for p, g in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)
    # the rows really ran in more than one group, each shorter than the block
    lengths = (mask.cumsum(dim=1).argmax(dim=1) + 1).tolist()
    assert len(length_groups(lengths)) > 1 and max(lengths) == input_ids.size(1)


def test_group_by_length_trains_what_one_padded_batch_trains(quick_runs, tmp_path):
    """02_sft.py and 03_dpo.py --group-by-length: the same loss curve as the default (one padded batch) up to
    float noise, in --quick runs from the same checkpoints."""
    sft = tmp_path / "sft"
    result = run_script(["02_sft.py", "--quick", "--init", str(quick_runs / "pretrain"), "--out", str(sft),
                         "--no-progress", "--group-by-length"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_curve(curve(quick_runs / "sft"), curve(sft), tolerance=1e-4)
    dpo = tmp_path / "dpo"
    result = run_script(["03_dpo.py", "--quick", "--init", str(quick_runs / "sft"), "--out", str(dpo),
                         "--no-progress", "--group-by-length"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_curve(curve(quick_runs / "dpo" / "beta-0.1"), curve(dpo / "beta-0.1"), tolerance=1e-4,
                      loose={"eval/kl": 1e-4,  # a pair whose margin is ~0 early on flips with float noise:
                             "rewards/accuracies": 0.05, "eval/rewards/accuracies": 0.05})
    first = next(r for r in curve(dpo / "beta-0.1") if r["split"] == "eval")
    assert first["eval/loss"] == pytest.approx(0.6931471805599453, abs=1e-7) and first["eval/rewards/margins"] == 0.0
