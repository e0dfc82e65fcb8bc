import math

import pytest
import torch
import torch.nn.functional as F

from gpt_mini.logprobs import sequence_logps
from gpt_mini.losses import (
    chosen_nll,
    conservative_dpo_loss,
    dpo_loss,
    group_advantages,
    hinge_loss,
    ipo_loss,
    kl_k3,
    masked_nll,
    policy_gradient_loss,
    preference_loss,
    preference_metrics,
)

# seed vector: log-ratios chosen [1, 1, 1, 1], rejected [-1, -1, 1, -1]
# -> delta [2, 2, 0, 2], the third pair is a tie
POLICY_CHOSEN = torch.tensor([-45.0, -50.0, -48.0, -52.0])
POLICY_REJECTED = torch.tensor([-48.0, -52.0, -46.0, -55.0])
REF_CHOSEN = torch.tensor([-46.0, -51.0, -49.0, -53.0])
REF_REJECTED = torch.tensor([-47.0, -51.0, -47.0, -54.0])
BETA = 0.1


# ---------------------------------------------------------------------------- SFT

def test_masked_nll_ignores_prompt_and_pad():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 7, 9, generator=gen)
    input_ids = torch.randint(0, 9, (2, 7), generator=gen)
    response_mask = torch.tensor([[0, 0, 1, 1, 1, 0, 0],
                                  [0, 0, 0, 1, 1, 1, 1]])
    base = masked_nll(logits, input_ids, response_mask)

    # reference: plain cross-entropy on the shifted targets with ignored positions
    targets = input_ids[:, 1:].clone()
    targets[response_mask[:, 1:] == 0] = -100
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, 9), targets.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(base, expected)

    changed_ids = input_ids.clone()
    changed_ids[0, :2] = (changed_ids[0, :2] + 1) % 9    # prompt
    changed_ids[0, 5:] = (changed_ids[0, 5:] + 4) % 9    # pad
    changed_ids[1, :3] = (changed_ids[1, :3] + 2) % 9    # prompt
    garbage_logits = logits.clone()
    garbage_logits[0, 0] = float("inf")    # predicts a prompt token
    garbage_logits[0, 4:] = float("nan")   # predicts pads / nothing
    torch.testing.assert_close(masked_nll(garbage_logits, changed_ids, response_mask), base, rtol=0, atol=0)


def test_masked_nll_is_token_mean():
    logits = torch.zeros(2, 5, 4)   # uniform over 4 tokens
    input_ids = torch.zeros(2, 5, dtype=torch.long)
    response_mask = torch.tensor([[0, 1, 0, 0, 0], [0, 1, 1, 1, 1]])
    torch.testing.assert_close(masked_nll(logits, input_ids, response_mask), torch.tensor(math.log(4)))


# ---------------------------------------------------------------------------- DPO

def test_dpo_seed_vector():
    loss, chosen_rewards, rejected_rewards = dpo_loss(
        POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN, REF_REJECTED, beta=BETA)
    assert round(loss.item(), 4) == 0.6219
    metrics = preference_metrics(chosen_rewards, rejected_rewards)
    assert metrics["rewards/accuracies"] == pytest.approx(0.75)   # the tie counts as wrong
    assert metrics["rewards/margins"] == pytest.approx(0.15)      # beta * mean delta = 0.1 * 1.5
    assert metrics["rewards/chosen"] == pytest.approx(0.1)
    assert metrics["rewards/rejected"] == pytest.approx(-0.05)
    delta = (POLICY_CHOSEN - REF_CHOSEN) - (POLICY_REJECTED - REF_REJECTED)
    assert delta.mean().item() == pytest.approx(1.5)

    smoothed, _, _ = conservative_dpo_loss(POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN, REF_REJECTED,
                                           beta=BETA, label_smoothing=0.1)
    assert round(smoothed.item(), 4) == 0.6369


def test_frozen_policy_gives_log2():
    policy_chosen = torch.randn(8) * 10 - 40
    policy_rejected = torch.randn(8) * 10 - 40
    loss, chosen_rewards, rejected_rewards = dpo_loss(
        policy_chosen, policy_rejected, policy_chosen.clone(), policy_rejected.clone(), beta=0.3)
    torch.testing.assert_close(loss, torch.tensor(math.log(2.0)), rtol=0, atol=1e-7)
    metrics = preference_metrics(chosen_rewards, rejected_rewards)
    assert metrics["rewards/margins"] == 0.0
    assert metrics["rewards/accuracies"] == 0.0


def trl_style_reference(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta,
                        label_smoothing, loss_type, chosen_lengths, rejected_lengths):
    """Independent re-derivation following the structure of TRL's DPOTrainer:
    for IPO the summed log-probs are first divided by the completion lengths,
    then logits = (pi_c - pi_r) - (ref_c - ref_r) and the loss per type."""
    if loss_type == "ipo":
        policy_chosen, ref_chosen = policy_chosen / chosen_lengths, ref_chosen / chosen_lengths
        policy_rejected, ref_rejected = policy_rejected / rejected_lengths, ref_rejected / rejected_lengths
    pi_logratios = policy_chosen - policy_rejected
    ref_logratios = ref_chosen - ref_rejected
    logits = pi_logratios - ref_logratios
    if loss_type == "sigmoid":
        per_pair = (-F.logsigmoid(beta * logits) * (1 - label_smoothing)
                    - F.logsigmoid(-beta * logits) * label_smoothing)
    elif loss_type == "hinge":
        per_pair = torch.relu(1 - beta * logits)
    elif loss_type == "ipo":
        per_pair = (logits - 1 / (2 * beta)) ** 2
    return per_pair.mean()


@pytest.mark.parametrize("loss_type,label_smoothing", [
    ("sigmoid", 0.0), ("sigmoid", 0.2), ("hinge", 0.0), ("ipo", 0.0)])
@pytest.mark.parametrize("beta", [0.05, 0.5])
def test_parity_with_trl_formulas(loss_type, label_smoothing, beta):
    gen = torch.Generator().manual_seed(123)
    batch = 16
    logps = [torch.randn(batch, generator=gen, dtype=torch.float64) * 5 - 30 for _ in range(4)]
    chosen_lengths = torch.randint(1, 40, (batch,), generator=gen)
    rejected_lengths = torch.randint(1, 40, (batch,), generator=gen)
    policy_chosen = logps[0].clone().requires_grad_()
    loss, chosen_rewards, rejected_rewards = preference_loss(
        loss_type, policy_chosen, logps[1], logps[2], logps[3], beta=beta, label_smoothing=label_smoothing,
        chosen_lengths=chosen_lengths, rejected_lengths=rejected_lengths)
    expected = trl_style_reference(logps[0], logps[1], logps[2], logps[3], beta, label_smoothing,
                                   loss_type, chosen_lengths, rejected_lengths)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(chosen_rewards, beta * (logps[0] - logps[2]))
    torch.testing.assert_close(rejected_rewards, beta * (logps[1] - logps[3]))
    assert not chosen_rewards.requires_grad and not rejected_rewards.requires_grad
    loss.backward()
    assert policy_chosen.grad is not None and torch.isfinite(policy_chosen.grad).all()


def test_preference_loss_rejects_bad_arguments():
    with pytest.raises(ValueError, match="sigmoid.*ipo.*hinge"):
        preference_loss("kto", POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN, REF_REJECTED, beta=BETA)
    with pytest.raises(ValueError, match="lengths"):
        preference_loss("ipo", POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN, REF_REJECTED, beta=BETA)


def test_the_default_path_is_plain_dpo():
    """--loss sigmoid without label smoothing is dpo_loss itself, bit for bit; eps > 0 is cDPO."""
    plain = dpo_loss(POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN, REF_REJECTED, BETA)
    switched = preference_loss("sigmoid", POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN, REF_REJECTED, BETA)
    zero_eps = conservative_dpo_loss(POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN, REF_REJECTED, BETA, 0.0)
    for other in (switched, zero_eps):
        for a, b in zip(plain, other):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    smoothed = preference_loss("sigmoid", POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN, REF_REJECTED, BETA, 0.1)[0]
    assert smoothed.item() != plain[0].item()


def test_hinge_and_ipo_seed_values():
    # delta = [2, 2, 0, 2]; hinge: relu(1 - 0.1 * delta) = [0.8, 0.8, 1, 0.8]
    hinge, _, _ = hinge_loss(POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN, REF_REJECTED, beta=BETA)
    assert hinge.item() == pytest.approx(0.85)
    # ipo with all lengths 1: (delta - 5)^2 = [9, 9, 25, 9]
    ones = torch.ones(4)
    ipo, _, _ = ipo_loss(POLICY_CHOSEN, POLICY_REJECTED, REF_CHOSEN, REF_REJECTED, beta=BETA,
                         chosen_lengths=ones, rejected_lengths=ones)
    assert ipo.item() == pytest.approx(13.0)


def test_chosen_nll_is_token_mean():
    # two chosen answers: 2 tokens at log p = -1 each, 3 tokens at -2 each
    assert chosen_nll(torch.tensor([-2.0, -6.0]), torch.tensor([2, 3])).item() == pytest.approx(8 / 5)


def test_dpo_with_sequence_logps_end_to_end():
    # chosen and rejected in one forward, split afterwards, as the DPO stage does
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(4, 6, 7, generator=gen)
    input_ids = torch.randint(0, 7, (4, 6), generator=gen)
    response_mask = torch.tensor([[0, 0, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1]] * 2)
    logps, counts = sequence_logps(logits, input_ids, response_mask, return_counts=True)
    policy_chosen, policy_rejected = logps.chunk(2)
    loss, _, _ = ipo_loss(policy_chosen, policy_rejected, policy_chosen, policy_rejected, beta=0.1,
                          chosen_lengths=counts[:2], rejected_lengths=counts[2:])
    assert loss.item() == pytest.approx(25.0)   # frozen policy: (0 - 1/(2*0.1))^2


# ---------------------------------------------------------------------------- GRPO

def test_group_advantages_hand_made():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0],    # mean .5, population std .5
                            [1.0, 1.0, 1.0, 1.0],    # all equal -> no signal
                            [0.0, 0.0, 0.0, 0.0],
                            [0.3, 0.3, 0.3, 0.3],    # all equal, not exactly representable
                            [2.0, 0.0, 0.0, 0.0]])   # mean .5, std sqrt(.75)
    advantages = group_advantages(rewards)
    assert torch.isfinite(advantages).all()
    torch.testing.assert_close(advantages[0], torch.tensor([1.0, -1.0, -1.0, 1.0]) * 0.5 / (0.5 + 1e-4))
    assert (advantages[1:4] == 0).all()
    std = math.sqrt(0.75)
    torch.testing.assert_close(advantages[4], torch.tensor([1.5, -0.5, -0.5, -0.5]) / (std + 1e-4))
    # each informative group sums to zero
    torch.testing.assert_close(advantages.sum(dim=1), torch.zeros(5), atol=1e-6, rtol=0)


def test_group_advantages_single_completion():
    advantages = group_advantages(torch.tensor([[1.0], [0.0]]))
    assert advantages.tolist() == [[0.0], [0.0]]


def test_kl_k3_properties():
    logps = torch.randn(1000)
    assert (kl_k3(logps, logps) == 0).all()
    ref_logps = logps + torch.randn(1000) * 2
    assert (kl_k3(logps, ref_logps) >= 0).all()


def test_kl_k3_mean_approximates_true_kl():
    gen = torch.Generator().manual_seed(0)
    policy_logp = torch.log_softmax(torch.randn(10, generator=gen, dtype=torch.float64), dim=0)
    ref_logp = torch.log_softmax(torch.randn(10, generator=gen, dtype=torch.float64), dim=0)
    true_kl = (policy_logp.exp() * (policy_logp - ref_logp)).sum()
    samples = torch.multinomial(policy_logp.exp(), 200_000, replacement=True, generator=gen)
    estimate = kl_k3(policy_logp[samples], ref_logp[samples]).mean()
    assert true_kl.item() > 0.1
    assert abs(estimate.item() - true_kl.item()) < 0.05 * true_kl.item()


def pg_batch(seed=0, sequences=6, length=5):
    gen = torch.Generator().manual_seed(seed)
    logps = -torch.rand(sequences, length, generator=gen) * 3
    advantages = torch.randn(sequences, generator=gen)
    mask = torch.ones(sequences, length, dtype=torch.long)
    mask[0, 3:] = 0
    mask[2, 1:] = 0
    return logps, advantages, mask


def test_pg_ratio_one_and_no_clipping_on_policy():
    logps, advantages, mask = pg_batch()
    loss, stats = policy_gradient_loss(logps, logps.clone(), logps.clone(), advantages, mask)
    assert stats["ratio_mean"] == pytest.approx(1.0)
    assert stats["clip_fraction"] == 0.0
    assert stats["kl"] == 0.0
    # at ratio 1 the loss is minus the token-weighted mean advantage
    expected = -(advantages[:, None] * mask).sum() / mask.sum()
    torch.testing.assert_close(loss, expected)


def test_pg_gradient_at_ratio_one():
    logps, advantages, mask = pg_batch(seed=1)
    logps = logps.requires_grad_()
    loss, _ = policy_gradient_loss(logps, logps.detach().clone(), None, advantages, mask, kl_coef=0.0)
    loss.backward()
    expected_grad = -advantages[:, None] * mask / mask.sum()   # -A * dlogp / N_tokens
    torch.testing.assert_close(logps.grad, expected_grad)


def test_pg_masked_positions_do_not_matter():
    logps, advantages, mask = pg_batch(seed=2)
    old_logps = logps + 0.1
    ref_logps = logps - 0.2
    base, base_stats = policy_gradient_loss(logps, old_logps, ref_logps, advantages, mask)
    garbage = logps.clone()
    garbage[mask == 0] = float("inf")
    garbage = garbage.requires_grad_()
    loss, stats = policy_gradient_loss(garbage, old_logps, ref_logps, advantages, mask)
    torch.testing.assert_close(loss, base)
    assert stats == pytest.approx(base_stats)
    loss.backward()
    assert torch.isfinite(garbage.grad).all() and (garbage.grad[mask == 0] == 0).all()


def test_pg_clipping():
    # one sequence, positive advantage, token ratios e^0.5 (clipped), 1, e^-0.5 (not clipped: A > 0)
    old_logps = torch.zeros(1, 3)
    logps = torch.tensor([[0.5, 0.0, -0.5]], requires_grad=True)
    advantages = torch.tensor([2.0])
    mask = torch.ones(1, 3)
    loss, stats = policy_gradient_loss(logps, old_logps, None, advantages, mask, clip_eps=0.2, kl_coef=0.0)
    assert stats["clip_fraction"] == pytest.approx(1 / 3)
    expected = -(1.2 * 2.0 + 1.0 * 2.0 + math.exp(-0.5) * 2.0) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert logps.grad[0, 0] == 0.0     # clipped: no gradient pushing it further
    assert logps.grad[0, 2] != 0.0


def test_pg_kl_term():
    logps, advantages, mask = pg_batch(seed=3)
    ref_logps = logps - 0.3
    with_kl, stats = policy_gradient_loss(logps, logps, ref_logps, advantages, mask, kl_coef=0.5)
    without_kl, _ = policy_gradient_loss(logps, logps, ref_logps, advantages, mask, kl_coef=0.0)
    k3 = math.exp(-0.3) + 0.3 - 1
    assert stats["kl"] == pytest.approx(k3, rel=1e-5)
    assert (with_kl - without_kl).item() == pytest.approx(0.5 * k3, rel=1e-5)
    with pytest.raises(ValueError):
        policy_gradient_loss(logps, logps, None, advantages, mask, kl_coef=0.1)


def trl_style_reference_free(policy_chosen, policy_rejected, beta, loss_type, chosen_lengths, rejected_lengths,
                             simpo_gamma):
    """TRL's CPOTrainer (loss_type="simpo") and ORPOTrainer, re-derived in their structure: average log-probs
    first, then SimPO's logits - gamma/beta inside a sigmoid, or ORPO's NLL minus beta * log sigmoid(log odds)."""
    chosen, rejected = policy_chosen / chosen_lengths, policy_rejected / rejected_lengths
    if loss_type == "simpo":
        logits = (chosen - rejected) - simpo_gamma / beta
        return (-F.logsigmoid(beta * logits)).mean()
    log_odds = (chosen - rejected) - (torch.log1p(-torch.exp(chosen)) - torch.log1p(-torch.exp(rejected)))
    return (-chosen).mean() - (beta * F.logsigmoid(log_odds)).mean()


@pytest.mark.parametrize("loss_type", ["simpo", "orpo"])
@pytest.mark.parametrize("beta, simpo_gamma", [(0.1, 0.5), (2.0, 1.0)])
def test_reference_free_losses_match_trl_formulas(loss_type, beta, simpo_gamma):
    gen = torch.Generator().manual_seed(7)
    batch = 16
    chosen_lengths = torch.randint(1, 40, (batch,), generator=gen)
    rejected_lengths = torch.randint(1, 40, (batch,), generator=gen)
    # summed log-probs of plausible replies: between -3 and -0.05 nats per token
    per_token = [-(torch.rand(batch, generator=gen, dtype=torch.float64) * 2.95 + 0.05) for _ in range(2)]
    policy_chosen = (per_token[0] * chosen_lengths).requires_grad_()
    policy_rejected = per_token[1] * rejected_lengths
    unused = torch.full((batch,), float("nan"), dtype=torch.float64)  # reference-free: the reference is not read
    loss, chosen_rewards, rejected_rewards = preference_loss(
        loss_type, policy_chosen, policy_rejected, unused, unused, beta,
        chosen_lengths=chosen_lengths, rejected_lengths=rejected_lengths, simpo_gamma=simpo_gamma)
    expected = trl_style_reference_free(policy_chosen.detach(), policy_rejected, beta, loss_type, chosen_lengths,
                                        rejected_lengths, simpo_gamma)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(chosen_rewards, beta * policy_chosen.detach() / chosen_lengths)
    torch.testing.assert_close(rejected_rewards, beta * policy_rejected / rejected_lengths)
    loss.backward()
    assert torch.isfinite(policy_chosen.grad).all()


def test_simpo_and_orpo_seed_values():
    # one pair, one token each: mean log-probs log 0.5 (chosen) and log 0.25 (rejected)
    chosen, rejected, one = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)]), torch.ones(1)
    simpo, _, _ = preference_loss("simpo", chosen, rejected, None, None, 1.0, chosen_lengths=one,
                                  rejected_lengths=one, simpo_gamma=0.5)
    assert simpo.item() == pytest.approx(-math.log(1 / (1 + math.exp(-(math.log(2) - 0.5)))))
    # odds 0.5/0.5 = 1 vs 0.25/0.75 = 1/3: log odds ratio log 3; loss = log 2 - 0.1 * log sigmoid(log 3)
    orpo, _, _ = preference_loss("orpo", chosen, rejected, None, None, 0.1, chosen_lengths=one, rejected_lengths=one)
    assert orpo.item() == pytest.approx(math.log(2) - 0.1 * math.log(0.75))
