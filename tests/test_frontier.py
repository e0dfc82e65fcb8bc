"""A point on the reward-KL frontier: sequence KL from replies sampled at T = 1, and their true reward."""

import copy

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
    args = argparse.Namespace(frontier=False, init=str(tmp_path), eval_limit=None, seed=0)
    assert frontier.tracked(held_out, args, policy, enc, "cpu") is held_out
    args.frontier = True
    record = frontier.tracked(held_out, args, policy, enc, "cpu")(0)
    assert record["eval/loss"] == 0.5 and record["frontier/kl"] == 0.0
    assert set(record) == {"eval/loss", "frontier/kl", "frontier/reward_train_wordings",
                           "frontier/reward_heldout_wordings"}
