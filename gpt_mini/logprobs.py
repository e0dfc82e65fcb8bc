"""
Log-probabilities of token sequences under a causal language model.

Every post-training stage needs the same quantity: how likely is *this*
response under *this* model, given the prompt in front of it?

    log p(response | prompt) = sum_t log p(y_t | prompt, y_<t)

SFT evaluation averages it per token, DPO compares it between policy and
reference for a chosen and a rejected answer, RLVR uses it token by token
inside the clipped policy-gradient objective. All of them call the functions
below so that the shift-by-one and the masking are written exactly once.

The shift by one: the model's logits at position t predict the token at
position t+1. So logits[:, :-1] score input_ids[:, 1:], and whether that
target token counts is decided by response_mask[:, 1:] (the mask of the
*target*, not of the position that produced the logits).
"""

import torch
from torch.nn.parallel import DistributedDataParallel


def token_logps(logits, targets):
    """
    log p(targets) under softmax(logits), for any leading shape.

    logits:  (..., V) float (any dtype; computed in float32)
    targets: (...)    long
    returns: (...)    float32

    log_softmax(x)[y] = x[y] - logsumexp(x). We gather the one logit we need
    and subtract the logsumexp instead of materialising a full log_softmax
    copy of the (..., V) tensor and then throwing away all but one column.
    """
    logits = logits.float()
    picked_logits = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (...)
    log_normalizer = torch.logsumexp(logits, dim=-1)                      # (...)
    return picked_logits - log_normalizer


def shift_by_one(logits, input_ids, response_mask):
    """
    Line up every position's logits with the token they predict: the one shift by one.

    returns: shifted_logits (B, T-1, V), targets (B, T-1), target_mask (B, T-1) bool.
    """
    shifted_logits = logits[:, :-1, :]          # (B, T-1, V) predicts the next token
    targets = input_ids[:, 1:]                  # (B, T-1)
    target_mask = response_mask[:, 1:].bool()   # (B, T-1) is that next token a response token?
    return shifted_logits, targets, target_mask


def response_token_logps(logits, input_ids, response_mask):
    """
    Per-token log-probs of the response tokens, already shifted by one.

    logits:        (B, T, V) the model's output on input_ids
    input_ids:     (B, T)    long
    response_mask: (B, T)    1 on response tokens (what we score), 0 on prompt/pad
    returns:
      per_token_logps: (B, T-1) float32, log p(input_ids[:, t+1] | input_ids[:, :t+1]),
                       exactly 0.0 wherever target_mask is 0
      target_mask:     (B, T-1) bool, = response_mask[:, 1:]

    Only the valid positions are ever pushed through logsumexp. So garbage
    (inf/NaN) logits at prompt or pad positions can neither leak into the value
    nor into the gradient (multiplying by a 0/1 mask would give 0 * inf = NaN).
    """
    shifted_logits, targets, target_mask = shift_by_one(logits, input_ids, response_mask)
    per_token_logps = torch.zeros(targets.shape, dtype=torch.float32, device=logits.device)
    # boolean indexing keeps only the N valid rows: (N, V) and (N,)
    per_token_logps[target_mask] = token_logps(shifted_logits[target_mask], targets[target_mask])
    return per_token_logps, target_mask


def sequence_logps(logits, input_ids, response_mask, return_counts=False):
    """
    SUM over response tokens of log p(input_ids[:, t+1] | input_ids[:, :t+1]).

    logits:        (B, T, V)
    input_ids:     (B, T)
    response_mask: (B, T)  mask of the tokens to score (position of the target)
    returns: (B,) float32 summed log-probs, and (B,) long token counts if
             return_counts. A sum, not a mean: a longer response has a lower
             (more negative) log-prob, which is what DPO's log-ratio needs.
             Divide by the counts yourself where a per-token mean is wanted.
    """
    per_token_logps, target_mask = response_token_logps(logits, input_ids, response_mask)
    summed_logps = per_token_logps.sum(dim=1)   # (B,)
    if return_counts:
        return summed_logps, target_mask.sum(dim=1)  # (B,), (B,)
    return summed_logps


def response_token_logps_by_length(model, input_ids, response_mask, max_groups=3):
    """response_token_logps(model(input_ids), ...) without paying for padding: per-token log-probs (N, T-1)
    and target mask (N, T-1), computed from the model itself.

    A right-padded block costs (rows x longest row) positions of compute however short most rows are. The
    rows are cut into up to max_groups groups of similar length (length_groups, below), each group trimmed to
    its own longest row and run on its own, the tied head computed only where a target is scored (a third of
    a DPO block's positions are prompt), and the results written back into the (N, T-1) block (0.0 past
    each row's end, as response_token_logps gives). Each value is the one a single forward gives, up to
    floating-point order; one autograd graph, so one backward. A model under DDP runs the block in one
    forward: DDP expects one forward per backward on every rank, and ranks could differ in group count."""
    if isinstance(model, DistributedDataParallel):
        return response_token_logps(model(input_ids), input_ids, response_mask)
    N, T = input_ids.shape
    row_lengths = (response_mask.cumsum(dim=1).argmax(dim=1) + 1).tolist()  # right-padded: last scored token + 1
    per_token_logps = torch.zeros(N, T - 1, dtype=torch.float32, device=input_ids.device)  # (N, T-1)
    for group in length_groups(row_lengths, max_groups):
        rows = torch.tensor(group, device=input_ids.device)
        longest = max(row_lengths[i] for i in group)
        ids, mask = input_ids[rows, :longest], response_mask[rows, :longest]  # (g, t)
        # the one shift, on the hidden states; then the tied head only where a target is scored: (n, V) logits
        # instead of (g, t, V)
        hidden, targets, target_mask = shift_by_one(model(ids, return_hidden=True), ids, mask)  # (g, t-1, C), ...
        logits = torch.nn.functional.linear(hidden[target_mask], model.wte.weight)  # (n, V)
        group_logps = torch.zeros(target_mask.shape, dtype=torch.float32, device=input_ids.device)  # (g, t-1)
        group_logps[target_mask] = token_logps(logits, targets[target_mask])
        group_logps = torch.nn.functional.pad(group_logps, (0, T - longest))  # (g, T-1): zeros past the row's end
        per_token_logps = per_token_logps.index_put((rows,), group_logps)  # out of place: autograd keeps it
    return per_token_logps, response_mask[:, 1:].bool()


def length_groups(lengths, max_groups=3, min_saving=0.1):
    """Split a batch into at most max_groups groups of similar length, to pad less: [[positions], ...].

    A padded batch costs (rows x longest row) positions of compute, so a batch of short and long
    conversations pays for the long one in every row (in the SFT data, 44 % of a random batch is padding).
    Sorted by length, the batch is cut where the cut saves most padded positions (exactly, by dynamic
    programming); a further group is taken only if it saves min_saving of the batch's padded positions,
    since each group is one more forward call. Groups are lists of positions in `lengths`."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    n, sizes = len(order), [lengths[i] for i in order]

    def cost(a, b):  # positions computed for sorted rows a..b-1 padded to their longest
        return (b - a) * sizes[b - 1]

    best = {(0, g): 0 for g in range(max_groups + 1)}  # best[(end, groups)]: cost of rows 0..end-1 in `groups`
    cut = {}
    for end in range(1, n + 1):
        best[(end, 0)] = float("inf")
        for g in range(1, max_groups + 1):
            best[(end, g)], cut[(end, g)] = min((best[(start, g - 1)] + cost(start, end), start)
                                                for start in range(end))
    groups = 1
    for g in range(2, max_groups + 1):  # one more group only when it pays for its extra call
        if best[(n, groups)] - best[(n, g)] >= min_saving * best[(n, 1)] * (g - groups):
            groups = g
    bounds, end = [], n
    for g in range(groups, 0, -1):
        start = cut[(end, g)]
        bounds.append((start, end))
        end = start
    return [order[a:b] for a, b in reversed(bounds) if b > a]


def pad_and_stack(sequences, masks=None, pad_id=0):
    """
    Right-pad a ragged batch of token lists into tensors.

    sequences: list of B lists of token ids
    masks:     list of B lists of 0/1 (same lengths), or None for all ones
    returns:   input_ids (B, L) long padded with pad_id,
               response_mask (B, L) long padded with 0, L = longest sequence.
    Right padding is safe for a causal model without an attention mask: a pad
    token only ever comes *after* the real tokens, so no real token attends to it.
    """
    if masks is None:
        masks = [[1] * len(seq) for seq in sequences]
    if len(masks) != len(sequences):
        raise ValueError(f"got {len(sequences)} sequences but {len(masks)} masks")
    longest = max(len(seq) for seq in sequences)
    input_ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    response_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, (seq, mask) in enumerate(zip(sequences, masks)):
        if len(seq) != len(mask):
            raise ValueError(f"sequence {row}: {len(seq)} tokens but {len(mask)} mask entries")
        input_ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        response_mask[row, :len(mask)] = torch.tensor(mask, dtype=torch.long)
    return input_ids, response_mask


def prompt_reply_batch(prompt_ids, reply_ids, pad_id):
    """Prompts and their replies (two lists of token lists) -> input_ids (B, L), response_mask (B, L): each row
    is prompt + reply, right-padded, with the mask on the reply's tokens only (pad_and_stack)."""
    return pad_and_stack([p + r for p, r in zip(prompt_ids, reply_ids)],
                         [[0] * len(p) + [1] * len(r) for p, r in zip(prompt_ids, reply_ids)], pad_id)
