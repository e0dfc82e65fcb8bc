"""
Loss functions for the three post-training stages.

  SFT   masked_nll                      next-token NLL on the response only
  DPO   dpo_loss (Eq. 7), the variants  preference losses on summed log-probs
        conservative_dpo_loss, ipo_loss,
        hinge_loss, simpo_loss, orpo_loss
        (preference_loss picks one by
        --loss), chosen_nll,
        preference_metrics
  RLVR  group_advantages, kl_k3,        GRPO-style clipped policy gradient
        policy_gradient_loss

All sequence log-probs come from gpt_mini.logprobs (shift by one, masked).
"""

import torch
import torch.nn.functional as F

from gpt_mini.logprobs import response_token_logps

PREFERENCE_LOSSES = ("sigmoid", "ipo", "hinge", "simpo", "orpo")  # the values of --loss

# -----------------------------------------------------------------------------
# SFT


def masked_nll(logits, input_ids, response_mask, num_tokens=None):
    """
    Mean over response tokens of -log p(token | everything before it).

    logits (B, T, V), input_ids (B, T), response_mask (B, T) -> scalar.
    Token-level mean over the whole batch: every response token weighs the
    same, so a long answer counts more than a short one. Prompt and pad
    positions are not scored at all (changing them changes nothing).
    num_tokens: what the sum is divided by; by default this batch's scored tokens
    (under DDP, 02_sft.py passes runtime.global_mean_divisor of them: the global batch's mean).
    """
    per_token_logps, target_mask = response_token_logps(logits, input_ids, response_mask)  # (B, T-1)
    if num_tokens is None:
        num_tokens = target_mask.sum().clamp(min=1)  # guard an all-prompt batch: loss 0, not NaN
    return -per_token_logps.sum() / num_tokens

# -----------------------------------------------------------------------------
# DPO and friends


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta):
    """
    The DPO loss, Rafailov et al. 2023, Eq. 7:  -log sigmoid(beta * [log-ratio(chosen) - log-ratio(rejected)]),
    where log-ratio(y) = log pi(y|x) - log ref(y|x).

    All four *_logps: (B,) summed response log-probs (logprobs.sequence_logps).
    returns (loss scalar, chosen_rewards (B,), rejected_rewards (B,)); the rewards, detached, are
    the implicit reward of DPO, r(x, y) = beta * log-ratio(y), and the mean is over pairs.
    """
    chosen_logratios = policy_chosen_logps - ref_chosen_logps          # (B,) log pi/ref on chosen
    rejected_logratios = policy_rejected_logps - ref_rejected_logps    # (B,) log pi/ref on rejected
    losses = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))  # (B,) Eq. 7
    return losses.mean(), beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


def conservative_dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta,
                          label_smoothing):
    """
    Conservative DPO (Mitchell 2023): each label is assumed flipped with probability eps = label_smoothing,
        -(1 - eps) log sigmoid(beta * delta) - eps log sigmoid(-beta * delta),
    delta = log-ratio(chosen) - log-ratio(rejected). eps = 0 is dpo_loss. Same inputs and outputs as dpo_loss.
    """
    chosen_logratios = policy_chosen_logps - ref_chosen_logps          # (B,)
    rejected_logratios = policy_rejected_logps - ref_rejected_logps    # (B,)
    delta = chosen_logratios - rejected_logratios                      # (B,)
    losses = (-(1.0 - label_smoothing) * F.logsigmoid(beta * delta)
              - label_smoothing * F.logsigmoid(-beta * delta))
    return losses.mean(), beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


def ipo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta,
             chosen_lengths, rejected_lengths):
    """
    IPO (Azar et al. 2023, Eq. 17): regress delta onto 1/(2 tau), tau = beta:  (delta - 1/(2 beta))^2,
    with delta built from per-token average log-ratios (the sums divided by the response lengths, as TRL
    does for IPO), so that long answers do not dominate the squared loss.
    chosen_lengths, rejected_lengths: (B,) response token counts. The rewards returned are still
    beta * summed log-ratio, as for dpo_loss (TRL would report the averaged ones).
    """
    chosen_logratios = policy_chosen_logps - ref_chosen_logps          # (B,)
    rejected_logratios = policy_rejected_logps - ref_rejected_logps    # (B,)
    delta = (chosen_logratios / chosen_lengths.clamp(min=1)
             - rejected_logratios / rejected_lengths.clamp(min=1))     # (B,) per-token averages
    losses = (delta - 1.0 / (2.0 * beta)) ** 2
    return losses.mean(), beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


def hinge_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta):
    """
    SLiC (Zhao et al. 2023): a hinge on the margin, relu(1 - beta * delta), so 1/beta is the margin size.
    Same inputs and outputs as dpo_loss.
    """
    chosen_logratios = policy_chosen_logps - ref_chosen_logps          # (B,)
    rejected_logratios = policy_rejected_logps - ref_rejected_logps    # (B,)
    losses = torch.relu(1.0 - beta * (chosen_logratios - rejected_logratios))
    return losses.mean(), beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


def simpo_loss(policy_chosen_mean_logps, policy_rejected_mean_logps, beta, gamma):
    """
    SimPO (Meng et al. 2024, Eq. 6), reference-free: -log sigmoid(beta * (mean log pi(y_w) - mean log pi(y_l)) - gamma).
    The reward is the length-normalised log-likelihood, beta * mean token log-prob, and gamma is a target margin
    (TRL's CPOTrainer with loss_type="simpo" and simpo_gamma: logits - gamma/beta inside the same sigmoid).
    Inputs: (B,) per-token mean log-probs of the chosen and rejected replies; the loss is the mean over pairs.
    returns (loss, chosen_rewards, rejected_rewards) with rewards = beta * mean log-prob, detached.
    """
    chosen_rewards = beta * policy_chosen_mean_logps                    # (B,)
    rejected_rewards = beta * policy_rejected_mean_logps                # (B,)
    losses = -F.logsigmoid(chosen_rewards - rejected_rewards - gamma)   # (B,)
    return losses.mean(), chosen_rewards.detach(), rejected_rewards.detach()


def orpo_loss(policy_chosen_mean_logps, policy_rejected_mean_logps, beta):
    """
    ORPO (Hong et al. 2024, Eq. 6-7), reference-free: the NLL of the chosen reply minus beta * log sigmoid of the
    log odds ratio, log-odds(y) = m - log(1 - e^m) with m the per-token mean log-prob of y (TRL's odds_ratio_loss).
    Each term is taken per pair (the chosen NLL is -m_w), then averaged over pairs.
    returns (loss, chosen_rewards, rejected_rewards) with rewards = beta * mean log-prob (TRL's), detached.
    """
    m_w, m_l = policy_chosen_mean_logps, policy_rejected_mean_logps    # (B,) each, < 0
    # log(1 - e^m) computed stably as log(-expm1(m)); m < 0 for any reply of at least one token
    log_odds = (m_w - m_l) - (torch.log(-torch.expm1(m_w)) - torch.log(-torch.expm1(m_l)))  # (B,)
    losses = -m_w - beta * F.logsigmoid(log_odds)                        # (B,) NLL + odds-ratio term
    return losses.mean(), (beta * m_w).detach(), (beta * m_l).detach()


def preference_loss(loss_type, policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps,
                    beta, label_smoothing=0.0, chosen_lengths=None, rejected_lengths=None, simpo_gamma=0.5):
    """
    The --loss switch of 03_dpo.py, on summed log-probs: "sigmoid" is dpo_loss (conservative_dpo_loss when
    label_smoothing > 0), "ipo" is ipo_loss, "hinge" is hinge_loss; "simpo" and "orpo" are reference-free (the
    ref_* inputs are not used) and read per-token means, the sums divided by the response lengths.
    ipo, simpo and orpo need chosen_lengths and rejected_lengths. Same outputs as dpo_loss.
    """
    if loss_type not in PREFERENCE_LOSSES:
        raise ValueError(f"unknown loss_type {loss_type!r}; valid ones are {', '.join(PREFERENCE_LOSSES)}")
    logps = (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    if loss_type in ("ipo", "simpo", "orpo") and (chosen_lengths is None or rejected_lengths is None):
        raise ValueError(f"loss_type={loss_type!r} needs chosen_lengths and rejected_lengths "
                         "(response token counts, e.g. from sequence_logps(..., return_counts=True))")
    if loss_type == "ipo":
        return ipo_loss(*logps, beta, chosen_lengths, rejected_lengths)
    if loss_type == "hinge":
        return hinge_loss(*logps, beta)
    if loss_type in ("simpo", "orpo"):
        chosen_means = policy_chosen_logps / chosen_lengths.clamp(min=1)        # (B,)
        rejected_means = policy_rejected_logps / rejected_lengths.clamp(min=1)  # (B,)
        if loss_type == "simpo":
            return simpo_loss(chosen_means, rejected_means, beta, simpo_gamma)
        return orpo_loss(chosen_means, rejected_means, beta)
    if label_smoothing:
        return conservative_dpo_loss(*logps, beta, label_smoothing)
    return dpo_loss(*logps, beta)


def chosen_nll(policy_chosen_logps, chosen_lengths, num_tokens=None):
    """
    Per-token NLL of the chosen responses: the extra term of RPO
    (Pang et al. 2024, Iterative Reasoning Preference Optimization):
        loss = dpo_loss + rpo_alpha * chosen_nll
    policy_chosen_logps (B,) summed log-probs, chosen_lengths (B,) token counts.
    Token-level mean over the batch (total NLL / total tokens), like a
    cross-entropy over all chosen tokens at once. num_tokens: the divisor, by default
    chosen_lengths' sum (under DDP: runtime.global_mean_divisor of it).
    """
    if num_tokens is None:
        num_tokens = chosen_lengths.sum().clamp(min=1)
    return -policy_chosen_logps.sum() / num_tokens


def preference_metrics(chosen_rewards, rejected_rewards):
    """
    Logging dict with TRL's metric names, as python floats.
      rewards/chosen      mean beta * log(pi/ref) on chosen
      rewards/rejected    mean beta * log(pi/ref) on rejected
      rewards/margins     mean (chosen - rejected) reward = mean beta * delta
      rewards/accuracies  fraction with chosen reward strictly > rejected (ties are wrong)
    """
    chosen_rewards = chosen_rewards.detach().float()
    rejected_rewards = rejected_rewards.detach().float()
    return {
        "rewards/chosen": chosen_rewards.mean().item(),
        "rewards/rejected": rejected_rewards.mean().item(),
        "rewards/margins": (chosen_rewards - rejected_rewards).mean().item(),
        "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean().item(),
    }

# -----------------------------------------------------------------------------
# RLVR (GRPO)


def group_advantages(rewards, eps=1e-4):
    """
    Group-relative advantages, Shao et al. 2024 (DeepSeekMath) Eq. 3/4 outcome
    supervision: every completion of a prompt gets A = (r - mean) / (std + eps)
    with mean and std taken over the G completions of that same prompt.

    rewards: (P, G) one row per prompt, G sampled completions each
    returns: (P, G) float32

    std is the *population* std (divide by G, not G-1): it is defined for
    G = 1 (sample std would be 0/0 = NaN there) and it makes every non-constant
    group have exactly zero mean and unit variance. TRL uses the sample std;
    the two differ by a constant factor sqrt(G/(G-1)).
    A group whose rewards are all equal carries no signal about which
    completion is better: its advantages are set to exactly 0.
    """
    rewards = rewards.float()
    group_mean = rewards.mean(dim=1, keepdim=True)                  # (P, 1)
    group_std = rewards.std(dim=1, keepdim=True, unbiased=False)    # (P, 1) population std
    advantages = (rewards - group_mean) / (group_std + eps)         # (P, G)
    all_equal = (rewards == rewards[:, :1]).all(dim=1, keepdim=True)  # (P, 1)
    return torch.where(all_equal, torch.zeros_like(advantages), advantages)


def kl_k3(logps, ref_logps):
    """
    Per-token estimate of KL(pi || ref) from samples of pi, Schulman 2020,
    "Approximating KL divergence", the k3 estimator:
        k3 = exp(ref - logp) - (ref - logp) - 1
    Unbiased (E_pi[exp(ref - logp)] = 1), always >= 0 (e^x >= 1 + x), and 0
    when the two log-probs are equal. Same shape as the inputs.
    """
    log_ratio = ref_logps - logps                # log ref/pi
    return torch.exp(log_ratio) - log_ratio - 1.0


def policy_gradient_loss(logps, old_logps, ref_logps, advantages, mask, clip_eps=0.2, kl_coef=0.02, num_tokens=None):
    """
    GRPO objective (Shao et al. 2024, DeepSeekMath Eq. 3), as a loss to minimise.

    logps:      (N, L) per-token log-probs of the sampled completions under the
                current policy (with grad); N = P*G sequences
    old_logps:  (N, L) same under the policy that sampled them (no grad)
    ref_logps:  (N, L) same under the frozen reference (no grad); may be None
                only if kl_coef == 0 (then stats["kl"] is 0.0)
    advantages: (N,)   one advantage per sequence, broadcast over its tokens
    mask:       (N, L) 1 on completion tokens that count, 0 elsewhere
    num_tokens: the divisor of the loss and the stats, by default mask's count of tokens
                (under DDP: runtime.global_mean_divisor of it, the global batch's token mean)
    returns (loss scalar, stats dict of floats: clip_fraction, kl, ratio_mean)

    per token:  ratio = exp(logp - old_logp)
                surrogate = min(ratio * A, clip(ratio, 1-eps, 1+eps) * A)   (PPO clip)
                loss_t = -surrogate + kl_coef * k3(logp, ref_logp)
    aggregation: sum of loss_t over all valid tokens of the batch divided by
    the number of valid tokens (token-level, as in DAPO) rather than GRPO's
    mean over tokens within each sequence and then over sequences; with the
    latter each token of a long completion would weigh less.
    At ratio 1 and kl_coef 0 the gradient is -A * grad(logp) / N_tokens.
    """
    valid = mask.bool()                                   # (N, L)
    if num_tokens is None:
        num_tokens = valid.sum().clamp(min=1)
    adv = advantages.float().unsqueeze(1)                 # (N, 1) broadcast over tokens
    zero = torch.zeros_like(logps)

    # garbage at masked positions must not reach exp() (where, not multiply)
    log_ratio = torch.where(valid, logps - old_logps, zero)            # (N, L)
    ratio = torch.exp(log_ratio)                                       # (N, L) importance ratio
    unclipped = ratio * adv                                            # (N, L)
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv  # (N, L)
    per_token_loss = -torch.minimum(unclipped, clipped)                # (N, L) PPO clip, DeepSeekMath Eq. 3

    per_token_kl = None
    if ref_logps is not None:
        per_token_kl = kl_k3(torch.where(valid, logps, zero), torch.where(valid, ref_logps, zero))  # (N, L)
    elif kl_coef != 0.0:
        raise ValueError("kl_coef != 0 needs ref_logps")
    if kl_coef != 0.0:
        per_token_loss = per_token_loss + kl_coef * per_token_kl        # DeepSeekMath Eq. 3/4 KL penalty

    loss = torch.where(valid, per_token_loss, zero).sum() / num_tokens

    with torch.no_grad():
        # the clip is "active" (gradient cut to 0) when the ratio left the trust
        # region in the direction the advantage pushes it
        is_clipped = (((ratio < 1.0 - clip_eps) & (adv < 0)) | ((ratio > 1.0 + clip_eps) & (adv > 0))) & valid
        stats = {
            "clip_fraction": (is_clipped.sum() / num_tokens).item(),
            "kl": (per_token_kl[valid].sum() / num_tokens).item() if per_token_kl is not None else 0.0,
            "ratio_mean": (ratio[valid].sum() / num_tokens).item(),
        }
    return loss, stats
