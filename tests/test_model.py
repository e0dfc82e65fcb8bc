"""The transformer: shapes, causality, KV-cache equivalence, parameter count."""

import pytest
import torch

from gpt_mini.model import GPT, GPTConfig, KVCache, apply_rope, rope_tables


def tiny(**kw):
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=97, block_size=32, n_layer=2, n_head=2, n_embd=16, **kw)
    return GPT(cfg).eval()


def test_logits_shape():
    model = tiny()
    idx = torch.randint(0, 97, (3, 11))
    assert model(idx).shape == (3, 11, 97)


@pytest.mark.parametrize("rope", [True, False])
def test_parameter_count_matches_config_formula(rope):
    for cfg in (GPTConfig(vocab_size=97, block_size=32, n_layer=2, n_head=2, n_embd=16, rope=rope),
                GPTConfig(vocab_size=2048, block_size=256, n_layer=4, n_head=6, n_embd=192, rope=rope)):
        model = GPT(cfg)
        assert sum(p.numel() for p in model.parameters()) == cfg.num_params()
    # RoPE has no parameters: the learned table is exactly block_size x n_embd more
    assert (GPTConfig(vocab_size=97, block_size=32, n_embd=16, rope=False).num_params()
            - GPTConfig(vocab_size=97, block_size=32, n_embd=16, rope=True).num_params()) == 32 * 16


def test_rope_scores_depend_only_on_the_offset():
    # the point of RoPE: q_m . k_n after rotation is a function of n - m, not of m and n
    torch.manual_seed(0)
    D, T = 8, 40
    cos, sin = rope_tables(D, T)
    q, k = torch.randn(D), torch.randn(D)
    rotated_q = apply_rope(q.expand(T, D), cos, sin)   # the same vector placed at every position
    rotated_k = apply_rope(k.expand(T, D), cos, sin)
    score = rotated_q @ rotated_k.T                     # (T, T): position m's query . position n's key
    for offset in (0, 1, 5, 17):
        along = torch.diagonal(score, offset=offset)
        torch.testing.assert_close(along, along[0].expand_as(along), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(score[0, 0], score[0, 5])  # a different offset does change it
    # position 0 is not rotated at all, and a rotation never changes a vector's length
    torch.testing.assert_close(rotated_q[0], q)
    torch.testing.assert_close(rotated_q.norm(dim=-1), q.norm().expand(T))


def test_checkpoint_config_without_rope_key_loads_as_learned_positions():
    from gpt_mini.checkpoint import model_from_checkpoint
    old = GPT(GPTConfig(vocab_size=97, block_size=32, n_layer=1, n_head=2, n_embd=16, rope=False))
    config = {k: v for k, v in old.config.to_dict().items() if k != "rope"}  # as written before RoPE
    loaded = model_from_checkpoint({"model_config": config, "model": old.state_dict()})
    assert loaded.config.rope is False and hasattr(loaded, "wpe")


def test_head_is_tied_to_embedding():
    model = tiny()
    names = [n for n, _ in model.named_parameters()]
    assert not any("lm_head" in n for n in names)  # no separate output matrix


def test_causality_future_tokens_never_change_past_logits():
    model = tiny()
    idx = torch.randint(0, 97, (2, 12))
    base = model(idx)
    for t in (0, 5, 11):
        changed = idx.clone()
        changed[:, t] = (changed[:, t] + 1) % 97
        out = model(changed)
        torch.testing.assert_close(out[:, :t], base[:, :t])
        assert not torch.allclose(out[:, t], base[:, t])  # the changed position itself does move


@pytest.mark.parametrize("rope", [True, False])
def test_cached_forward_equals_full_forward(rope):
    model = tiny(rope=rope)
    idx = torch.randint(0, 97, (2, 10))
    full = model(idx)
    cache = KVCache(model.config, 2, 10, "cpu", torch.float32)
    parts = [model(idx[:, :4], cache), model(idx[:, 4:7], cache), model(idx[:, 7:8], cache), model(idx[:, 8:], cache)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rope", [True, False])
def test_kv_cached_greedy_generation_equals_uncached(rope):
    model = tiny(rope=rope)
    idx = torch.randint(0, 97, (3, 5))
    with_cache = model.generate(idx, 20, temperature=0, use_cache=True)
    without = model.generate(idx, 20, temperature=0, use_cache=False)
    assert with_cache.tolist() == without.tolist()
    assert with_cache.shape == (3, 20)


def test_generation_stops_at_stop_token_and_pads_with_it():
    model = tiny()
    idx = torch.randint(0, 97, (1, 4))
    free = model.generate(idx, 10, temperature=0)[0].tolist()
    stop = free[2]
    out = model.generate(idx, 10, temperature=0, stop_tokens=(stop,))[0].tolist()
    first = out.index(stop)
    assert out[:first + 1] == free[:first + 1]
    assert len(out) == first + 1  # all rows finished, so generation ended early


def test_sampling_is_seeded_and_respects_top_k():
    model = tiny()
    idx = torch.randint(0, 97, (4, 3))
    a = model.generate(idx, 8, temperature=1.0, top_k=5, generator=torch.Generator().manual_seed(1))
    b = model.generate(idx, 8, temperature=1.0, top_k=5, generator=torch.Generator().manual_seed(1))
    assert a.tolist() == b.tolist()
    first_logits = model(idx)[:, -1]
    allowed = torch.topk(first_logits, 5).indices
    assert all(a[i, 0] in allowed[i] for i in range(4))


def test_too_long_input_is_refused():
    model = tiny()
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 33, dtype=torch.long))
