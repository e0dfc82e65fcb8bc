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
from .logprobs import response_token_logps, sequence_logps, shift_by_one


def pair_logps(model, input_ids, response_mask):
    """(2B, T) chosen-then-rejected block -> chosen logps (B,), rejected logps (B,), logits."""
    logits = model(input_ids)  # (2B, T, V)
    logps = sequence_logps(logits, input_ids, response_mask)  # (2B,) sums over response tokens
    chosen_logps, rejected_logps = logps.chunk(2)
    return chosen_logps, rejected_logps, logits


@torch.no_grad()
def score_pairs(model, examples, pad_id, batch_size=64):
    """Summed response log-probs of every pair under model -> (chosen (N,), rejected (N,), lengths (2, N)).

    Used once before training to cache the frozen reference's log-probs, and for
    the held-out evaluation. The model is put in eval mode and restored after.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    chosen, rejected, lengths = [], [], []
    for i in range(0, len(examples), batch_size):
        input_ids, mask, counts = pair_batch(examples[i:i + batch_size], pad_id)
        c, r, _ = pair_logps(model, input_ids.to(device), mask.to(device))
        chosen.append(c.float().cpu())
        rejected.append(r.float().cpu())
        lengths.append(counts.view(2, -1))
    model.train(was_training)
    return torch.cat(chosen), torch.cat(rejected), torch.cat(lengths, dim=1)


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


@torch.no_grad()
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
