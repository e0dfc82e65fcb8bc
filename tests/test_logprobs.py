import math

import torch

from gpt_mini.logprobs import pad_and_stack, response_token_logps, sequence_logps, token_logps


def random_batch(batch=3, length=7, vocab=11, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, length, vocab, generator=gen)
    input_ids = torch.randint(0, vocab, (batch, length), generator=gen)
    return logits, input_ids


def test_token_logps_matches_log_softmax():
    logits, targets = random_batch()
    expected = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(token_logps(logits, targets), expected)


def test_token_logps_is_float32_for_half_inputs():
    logits, targets = random_batch()
    out = token_logps(logits.to(torch.bfloat16), targets)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, token_logps(logits, targets), atol=0.05, rtol=0.0)


def test_hand_computed_tiny_example():
    # vocab of 2, logits [0, log 3] -> p = [1/4, 3/4] at every position
    logits = torch.tensor([[0.0, math.log(3.0)]]).expand(4, 2).unsqueeze(0).clone()  # (1, 4, 2)
    input_ids = torch.tensor([[0, 1, 1, 0]])
    response_mask = torch.tensor([[0, 0, 1, 1]])  # prompt = first two tokens
    # scored: token 2 (=1, p 3/4) given positions <=1, token 3 (=0, p 1/4) given <=2
    expected = math.log(0.75) + math.log(0.25)
    logps, counts = sequence_logps(logits, input_ids, response_mask, return_counts=True)
    assert abs(logps.item() - expected) < 1e-6
    assert counts.tolist() == [2]


def test_shift_by_one():
    # Make position t's logits put almost all mass on token input_ids[t+1] (the
    # correct next token) and almost none on input_ids[t] (the current token).
    # Shifted scoring gives ~0; an unshifted mask/target would give ~ -20 per token.
    input_ids = torch.tensor([[1, 2, 3, 4, 0]])
    vocab = 5
    logits = torch.full((1, 5, vocab), -10.0)
    for t in range(4):
        logits[0, t, input_ids[0, t + 1]] = 10.0
    response_mask = torch.tensor([[0, 0, 1, 1, 1]])
    logps, counts = sequence_logps(logits, input_ids, response_mask, return_counts=True)
    assert logps.item() > -1e-6
    assert counts.item() == 3
    # what an unshifted implementation would compute is far off
    unshifted = (torch.log_softmax(logits, -1).gather(-1, input_ids.unsqueeze(-1)).squeeze(-1)
                 * response_mask).sum()
    assert unshifted.item() < -40


def test_mask_of_target_not_of_source_position():
    # Response mask on the *last* token only: exactly one term, predicted by
    # the logits of the second-to-last position.
    logits, input_ids = random_batch(batch=1, length=5)
    response_mask = torch.tensor([[0, 0, 0, 0, 1]])
    expected = torch.log_softmax(logits[0, 3], -1)[input_ids[0, 4]]
    torch.testing.assert_close(sequence_logps(logits, input_ids, response_mask)[0], expected)


def test_prompt_and_pad_tokens_never_matter():
    logits, input_ids = random_batch(batch=2, length=8, seed=1)
    # row 0: prompt 3, response 3, pad 2; row 1: prompt 2, response 6
    response_mask = torch.tensor([[0, 0, 0, 1, 1, 1, 0, 0],
                                  [0, 0, 1, 1, 1, 1, 1, 1]])
    base = sequence_logps(logits, input_ids, response_mask)

    # Changing a prompt/pad token id changes nothing as long as the logits stay fixed
    changed_ids = input_ids.clone()
    changed_ids[0, 0] = (changed_ids[0, 0] + 1) % 11
    changed_ids[0, 6:] = (changed_ids[0, 6:] + 5) % 11
    changed_ids[1, :2] = (changed_ids[1, :2] + 3) % 11
    torch.testing.assert_close(sequence_logps(logits, changed_ids, response_mask), base, rtol=0, atol=0)

    # Logits that only predict prompt tokens or pad tokens (or sit at the last
    # position) are never used, even if they are inf or NaN.
    garbage = logits.clone()
    garbage[0, 0:2] = float("inf")      # predict prompt tokens 1, 2
    garbage[0, 5:] = float("nan")       # predict pads (and the last position)
    garbage[1, 0] = -float("inf")       # predicts prompt token 1
    garbage[1, 7] = float("nan")        # last position predicts nothing
    out = sequence_logps(garbage, input_ids, response_mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, base, rtol=0, atol=0)


def test_no_nan_gradient_from_garbage_positions():
    logits, input_ids = random_batch(batch=1, length=6, seed=2)
    logits[0, 0] = float("inf")
    logits = logits.requires_grad_()
    response_mask = torch.tensor([[0, 0, 1, 1, 1, 0]])
    sequence_logps(logits, input_ids, response_mask).sum().backward()
    assert torch.isfinite(logits.grad).all()
    assert (logits.grad[0, 0] == 0).all() and (logits.grad[0, 5] == 0).all()


def test_sum_not_mean_with_different_lengths():
    # same per-token distribution everywhere, responses of length 2 and 4
    vocab = 4
    logits = torch.zeros(2, 6, vocab)       # uniform: every token has log p = -log 4
    input_ids = torch.zeros(2, 6, dtype=torch.long)
    response_mask = torch.tensor([[0, 1, 1, 0, 0, 0],
                                  [0, 1, 1, 1, 1, 0]])
    logps, counts = sequence_logps(logits, input_ids, response_mask, return_counts=True)
    torch.testing.assert_close(logps, torch.tensor([-2 * math.log(4), -4 * math.log(4)]))
    assert counts.tolist() == [2, 4]
    # the per-token mean is the same for both: only a sum tells them apart
    torch.testing.assert_close(logps / counts, torch.full((2,), -math.log(4)))


def test_response_token_logps_zero_outside_mask():
    logits, input_ids = random_batch(batch=2, length=6, seed=3)
    response_mask = torch.tensor([[0, 0, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1]])
    per_token, target_mask = response_token_logps(logits, input_ids, response_mask)
    assert per_token.shape == (2, 5) and target_mask.shape == (2, 5)
    assert target_mask.tolist() == response_mask[:, 1:].bool().tolist()
    assert (per_token[~target_mask] == 0).all()
    assert (per_token[target_mask] < 0).all()


def test_pad_and_stack():
    input_ids, response_mask = pad_and_stack([[5, 6, 7], [8]], [[0, 1, 1], [1]], pad_id=99)
    assert input_ids.dtype == torch.long and response_mask.dtype == torch.long
    assert input_ids.tolist() == [[5, 6, 7], [8, 99, 99]]
    assert response_mask.tolist() == [[0, 1, 1], [1, 0, 0]]
    input_ids, response_mask = pad_and_stack([[1, 2], [3, 4]], None, pad_id=0)
    assert response_mask.tolist() == [[1, 1], [1, 1]]
