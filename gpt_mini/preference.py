"""
Scoring preference pairs with a model: the pieces 03_dpo.py, its tests and the
benchmark share.

One forward pass scores both responses of a batch of pairs: the chosen rows are
stacked on top of the rejected rows (see data.pair_batch), so the policy sees a
(2B, T) block and sequence_logps returns 2B sums, which chunk(2) splits back.
"""

import torch
import torch.nn.functional as F

from .data import pair_batch
from .evaluate import before_after_rows
from .logprobs import response_token_logps, response_token_logps_by_length, sequence_logps, shift_by_one
from .losses import preference_loss, preference_metrics
from .runtime import evaluation, gather_round_robin, split_round_robin


def pair_logps(model, input_ids, response_mask):
    """(2B, T) chosen-then-rejected block -> chosen logps (B,), rejected logps (B,), logits."""
    logits = model(input_ids)  # (2B, T, V)
    logps = sequence_logps(logits, input_ids, response_mask)  # (2B,) sums over response tokens
    chosen_logps, rejected_logps = logps.chunk(2)
    return chosen_logps, rejected_logps, logits


def pair_logps_by_length(model, input_ids, response_mask, max_groups=3):
    """pair_logps without paying for padding: (2B, T) block -> chosen logps (B,), rejected logps (B,).

    A pair's rows are padded to the longest of all 2B (a prompt of 11 to 32 tokens and a reply of 3 to 30:
    about a third of a training block is padding); logprobs.response_token_logps_by_length runs the rows in
    groups of similar length, and the sums are pair_logps's up to floating-point order."""
    per_token_logps, _ = response_token_logps_by_length(model, input_ids, response_mask, max_groups)  # (2B, T-1)
    chosen_logps, rejected_logps = per_token_logps.sum(dim=1).chunk(2)  # (B,) each
    return chosen_logps, rejected_logps


@evaluation
def score_pairs(model, examples, pad_id, batch_size=64, kl_to=None, split_over_ranks=False):
    """Summed response log-probs of every pair under model -> (chosen (N,), rejected (N,), lengths (2, N)).

    Used once before training to cache the frozen reference's log-probs, and for
    the held-out evaluation. With kl_to=reference, the same pass also gives a 4th value:
    the token KL(model || reference) (token_kl), averaged over the batches.
    split_over_ranks=True (the cache, under DDP: every rank calls it; not with kl_to): each rank scores every
    world_size-th batch and all of them get every batch back, so the cache costs 1/N of the work
    and holds the very numbers one process computes (the same batches, so the same padding).
    """
    device = next(model.parameters()).device
    batch_starts = list(range(0, len(examples), batch_size))
    scored, kls = [], []
    for i in split_round_robin(batch_starts) if split_over_ranks else batch_starts:
        input_ids, mask, counts = pair_batch(examples[i:i + batch_size], pad_id)
        input_ids, mask = input_ids.to(device), mask.to(device)
        c, r, logits = pair_logps(model, input_ids, mask)
        scored.append((c.float().cpu(), r.float().cpu(), counts.view(2, -1)))
        if kl_to is not None:
            kls.append(token_kl(logits, kl_to(input_ids), input_ids, mask))
    if split_over_ranks:
        scored = gather_round_robin(scored)
    chosen, rejected, lengths = zip(*scored)
    scores = torch.cat(chosen), torch.cat(rejected), torch.cat(lengths, dim=1)
    return scores if kl_to is None else (*scores, torch.stack(kls).mean().item())


def abs_logratio(policy_chosen, policy_rejected, ref_chosen, ref_rejected, lengths, num_tokens=None):
    """Mean |log pi - log ref| per response token, over chosen and rejected sums: a cheap sign that the policy
    moved, available on every training batch. (How far it moved is the token KL, token_kl, on held-out pairs.)
    num_tokens: the divisor, by default the sum of lengths (under DDP: runtime.global_mean_divisor of it)."""
    moved = (policy_chosen - ref_chosen).abs().sum() + (policy_rejected - ref_rejected).abs().sum()
    return (moved / (lengths.sum() if num_tokens is None else num_tokens)).item()


def train_metrics(loss, chosen_rewards, rejected_rewards, policy_chosen_logps, policy_rejected_logps,
                  ref_chosen_logps, ref_rejected_logps, lengths, num_tokens=None):
    """What 03_dpo.py logs for one training batch, with TRL's names: loss, rewards/..., logps/..., abs_logratio
    (num_tokens: its divisor, see abs_logratio)."""
    return {"loss": loss.item(), **preference_metrics(chosen_rewards, rejected_rewards),
            "logps/chosen": policy_chosen_logps.mean().item(), "logps/rejected": policy_rejected_logps.mean().item(),
            "abs_logratio": abs_logratio(policy_chosen_logps.detach(), policy_rejected_logps.detach(),
                                         ref_chosen_logps, ref_rejected_logps, lengths, num_tokens)}


def held_out_metrics(policy, reference, examples, ref_scores, pad_id, beta, loss_type="sigmoid", label_smoothing=0.0,
                     simpo_gamma=0.5):
    """eval/ metrics on held-out pairs: TRL's names, abs_logratio and the exact token KL to the reference.

    ref_scores: score_pairs(reference, examples, pad_id), computed once. One pass of the policy
    gives both its summed log-probs and the logits the KL needs.
    """
    ref_chosen, ref_rejected, lengths = ref_scores
    policy_chosen, policy_rejected, _, kl = score_pairs(policy, examples, pad_id, kl_to=reference)
    loss, chosen_rewards, rejected_rewards = preference_loss(
        loss_type, policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta, label_smoothing,
        lengths[0], lengths[1], simpo_gamma)
    out = {"eval/loss": loss.item(), "eval/logps/chosen": policy_chosen.mean().item(),
           "eval/logps/rejected": policy_rejected.mean().item(),
           "eval/abs_logratio": abs_logratio(policy_chosen, policy_rejected, ref_chosen, ref_rejected, lengths),
           "eval/kl": kl}
    out.update({f"eval/{k}": v for k, v in preference_metrics(chosen_rewards, rejected_rewards).items()})
    return out


def held_out_rows(first, last):
    """The report's rows for the held-out pairs: {label: {before, after, pct}} from the first and the last
    held_out_metrics of a run."""
    return before_after_rows(first, last, [("held-out preference accuracy", "eval/rewards/accuracies", True),
                                           ("held-out reward margin", "eval/rewards/margins", False),
                                           ("held-out token KL to reference", "eval/kl", False)])


def token_kl(policy_logits, ref_logits, input_ids, response_mask):
    """Exact KL(policy || reference) per response position, averaged over positions.

    At each position that predicts a response token (logprobs.shift_by_one), sum
    over the whole vocabulary p log(p / p_ref). Teacher-forced on the given
    responses, so it measures how far the next-token distributions moved there.
    """
    policy_shifted, _, mask = shift_by_one(policy_logits, input_ids, response_mask)
    ref_shifted, _, _ = shift_by_one(ref_logits, input_ids, response_mask)
    logp = F.log_softmax(policy_shifted.float(), dim=-1)[mask]  # (N, V)
    logq = F.log_softmax(ref_shifted.float(), dim=-1)[mask]
    return (logp.exp() * (logp - logq)).sum(-1).mean()


@evaluation
def token_logratios(policy, reference, example, pad_id):
    """Where DPO moved the model on one pair: log pi_theta - log pi_ref for every response token.

    Returns {"chosen": [(token_id, log-ratio), ...], "rejected": [...]}, one entry per response
    token (the <|end|> included), teacher-forced on the pair's own text. The sum of a row is the
    log-ratio DPO's loss sees; the per-token split shows which tokens carry it.
    """
    device = next(policy.parameters()).device
    input_ids, mask, _ = pair_batch([example], pad_id)  # (2, T): chosen row, then rejected row
    input_ids, mask = input_ids.to(device), mask.to(device)
    policy_logps, target_mask = response_token_logps(policy(input_ids), input_ids, mask)  # (2, T-1)
    ref_logps, _ = response_token_logps(reference(input_ids), input_ids, mask)
    targets = input_ids[:, 1:]
    out = {}
    for row, side in enumerate(("chosen", "rejected")):
        keep = target_mask[row]
        ratios = (policy_logps[row] - ref_logps[row])[keep].tolist()
        out[side] = list(zip(targets[row][keep].tolist(), ratios))
    return out


def logratio_views(policy, reference, examples, pad_id, enc, kinds=("sycophancy", "self_contradiction", "rude")):
    """token_logratios of the first held-out pair of each kind, tokens decoded, for plots.plot_token_logratios
    and summary.json: [{"title": ..., "chosen": [(token text, log-ratio), ...], "rejected": [...]}, ...]."""
    views = []
    for kind in kinds:
        example = next((e for e in examples if e["kind"] == kind), None)
        if example is not None:
            ratios = token_logratios(policy, reference, example, pad_id)
            views.append({"title": f"held-out pair, rejected = {kind}",
                          **{side: [(enc.decode([t]), r) for t, r in ratios[side]] for side in ratios}})
    return views
