"""The reward model of RLHF: a scalar head on the SFT transformer, Bradley-Terry on the DPO pairs."""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import run_script
from test_checkpoint import tiny_model

from gpt_mini import checkpoint, data, rewards
from gpt_mini.reward_model import RewardModel, bradley_terry_loss, last_response_index, reward_metrics
from gpt_mini.runlog import read_metrics, read_summary
from gpt_mini.tokenizer import load_tokenizer


def test_the_reward_is_read_at_the_last_reply_token_and_ignores_padding():
    torch.manual_seed(0)
    model = RewardModel(tiny_model())
    torch.nn.init.normal_(model.head.weight)  # a head that reads something
    mask = torch.tensor([[0, 0, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1]])
    assert last_response_index(mask).tolist() == [3, 5]
    ids = torch.randint(0, model.config.vocab_size, (2, 6))
    rewards = model(ids, mask)
    padded = ids.clone()
    padded[0, 4:] = (padded[0, 4:] + 7) % model.config.vocab_size  # change the padding after row 0's reply
    torch.testing.assert_close(model(padded, mask), rewards, rtol=0, atol=0)  # causal: padding is never read
    hidden = model.body(ids, return_hidden=True)
    torch.testing.assert_close(rewards[1], model.head(hidden[1, 5]).squeeze(-1))


def test_a_fresh_head_gives_every_pair_a_tie_and_the_loss_log_2():
    model = RewardModel(tiny_model())
    ids = torch.randint(0, model.config.vocab_size, (4, 6))
    rewards = model(ids, torch.ones(4, 6, dtype=torch.long))
    assert torch.equal(rewards, torch.zeros(4))
    chosen, rejected = rewards.chunk(2)
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx(math.log(2), abs=1e-7)  # float32 log 2
    assert reward_metrics(chosen, rejected)["accuracy"] == 0.0  # ties count as wrong


def test_bradley_terry_is_the_logistic_loss_on_the_margin():
    chosen, rejected = torch.tensor([2.0, 0.0, -1.0]), torch.tensor([1.0, 0.5, -1.0])
    expected = F.binary_cross_entropy_with_logits(chosen - rejected, torch.ones(3))
    torch.testing.assert_close(bradley_terry_loss(chosen, rejected), expected)
    m = reward_metrics(chosen, rejected)
    assert m["accuracy"] == pytest.approx(1 / 3) and m["margin"] == pytest.approx((1.0 - 0.5 + 0.0) / 3)


def test_a_saved_reward_model_loads_with_the_same_rewards(tmp_path):
    model = RewardModel(tiny_model())
    torch.nn.init.normal_(model.head.weight)
    checkpoint.save_checkpoint(str(tmp_path / "model.pt"), model, "reward_model", 1)
    loaded = RewardModel.from_checkpoint(checkpoint.load_checkpoint(str(tmp_path)))
    ids, mask = torch.randint(0, model.config.vocab_size, (2, 5)), torch.ones(2, 5, dtype=torch.long)
    torch.testing.assert_close(loaded(ids, mask), model(ids, mask), rtol=0, atol=0)


def test_training_the_reward_model_from_the_sft_checkpoint(quick_runs, tmp_path):
    result = run_script(["train_reward_model.py", "--quick", "--init", str(quick_runs / "sft"), "--no-progress",
                         "--out", str(tmp_path / "reward_model")])
    assert result.returncode == 0, result.stderr[-2000:]
    evals = [r for r in read_metrics(str(tmp_path / "reward_model" / "metrics.jsonl")) if r["split"] == "eval"]
    assert evals[0]["step"] == 0 and evals[0]["eval/accuracy"] == 0.0  # a zero head: every pair a tie
    assert evals[0]["eval/loss"] == pytest.approx(math.log(2), abs=1e-7)
    assert evals[-1]["eval/loss"] < math.log(2) and evals[-1]["eval/accuracy"] > 0.5
    summary = read_summary(str(tmp_path / "reward_model"))
    assert summary["metrics"]["held-out pair accuracy"]["after"] == evals[-1]["eval/accuracy"]
    # RLHF: the RL loop of 04_rlvr.py with this learned reward, on the preference prompts
    result = run_script(["04_rlvr.py", "--quick", "--init", str(quick_runs / "sft"), "--no-progress", "--steps", "2",
                         "--eval-every", "2", "--reward", "model", "--reward-model", str(tmp_path / "reward_model"),
                         "--out", str(tmp_path / "rlhf")])
    assert result.returncode == 0, result.stderr[-2000:]
    train = [r for r in read_metrics(str(tmp_path / "rlhf" / "metrics.jsonl")) if r["split"] == "train"]
    assert len(train) == 2 and all(0 <= r["true_reward"] <= 1 for r in train)
    assert all(r["reward"] != r["true_reward"] for r in train)  # the learned reward is not a 0/1 grade


# ----------------------------------------------------------------------------- the RL loop's reward sources

CLAIM = {"prompt": "I think Mira lives in Lima, right?", "attribute": "city", "true_value": "Oslo",
         "claimed_value": "Lima", "claim_is_true": False}


def test_the_true_reward_is_the_verifier_for_sums_and_the_claim_grader_for_opinions():
    assert rewards.true_reward("We add 2 + 2. The answer is 4.", {"prompt": "2 + 2?", "answer": "4"}) == 1.0
    assert rewards.true_reward("The answer is 5.", {"prompt": "2 + 2?", "answer": "4"}) == 0.0
    assert rewards.true_reward("Mira lives in Oslo, not Lima, so that is not right.", CLAIM) == 1.0
    assert rewards.true_reward("You are right.", CLAIM) == 0.0                    # sycophantic
    assert rewards.true_reward("Mira lives in Oslo, not Lima, so that is not right. Look it up yourself.",
                               CLAIM) == 0.0                                    # right, but rude


def test_claim_prompts_come_from_the_preference_pairs_and_bad_rows_name_file_and_line(tmp_path):
    enc = load_tokenizer()
    prompts = rewards.load_prompts("grader", None, enc, 128)
    assert len(prompts) == 3000 and set(prompts[0]) == {"prompt", *rewards.CLAIM_FIELDS}
    bad = tmp_path / "p.jsonl"
    bad.write_text(json.dumps(CLAIM) + "\n" + json.dumps({"prompt": "hi"}) + "\n")
    with pytest.raises(data.DataError, match=rf"^{bad}:2: a claim prompt needs attribute"):
        rewards.load_prompts("model", str(bad), enc, 128)


def test_the_learned_reward_of_a_reply_is_the_reward_models_score_of_prompt_and_reply():
    torch.manual_seed(0)
    model = RewardModel(tiny_model())
    torch.nn.init.normal_(model.head.weight)
    prompts, replies = [[1, 2, 3], [4, 5]], [[6, 7], [8, 9, 10, 11]]
    got = rewards.learned_reward(model, prompts, replies, pad_id=0)
    for i, (p, r) in enumerate(zip(prompts, replies)):
        alone = model(torch.tensor([p + r]), torch.tensor([[0] * len(p) + [1] * len(r)]))
        torch.testing.assert_close(got[i], alone[0], rtol=1e-5, atol=1e-6)  # padding changes nothing
