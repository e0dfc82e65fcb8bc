"""
A small decoder-only transformer, the one model carried through every stage.

GPT-2 shaped: token embeddings, pre-norm blocks (LayerNorm -> causal self-attention
-> residual, LayerNorm -> GELU MLP -> residual), a final LayerNorm and an LM head tied
to the token embedding (Press & Wolf 2017). Positions enter through rotary embeddings
(RoPE, Su et al. 2021): each query and key is rotated by an angle proportional to its
position, so attention scores depend on the offset between two tokens, not on where
they sit. GPTConfig(rope=False) gives GPT-2's learned position table instead.
Attention goes through F.scaled_dot_product_attention, which picks a fused kernel
where the device has one. Generation keeps a KV cache so each new token costs one
position of compute instead of re-running the whole prefix.

Names follow nanoGPT: B batch, T time (sequence), C channels (n_embd), H heads,
D head size (C // H), V vocabulary.
"""

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 2048   # set from the tokenizer
    block_size: int = 256    # longest sequence the model accepts (RoPE tables / position table)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    rope: bool = True        # rotary position embeddings (Su et al. 2021); False: a learned table (GPT-2)

    def to_dict(self):
        return asdict(self)

    def num_params(self):
        """Parameter count predicted from the shape alone (tested against the model)."""
        V, T, C, L = self.vocab_size, self.block_size, self.n_embd, self.n_layer
        per_block = 12 * C * C + 4 * C   # qkv 3C^2, proj C^2, MLP 8C^2, two LayerNorms 2*2C
        positions = 0 if self.rope else T * C   # RoPE has no parameters
        return V * C + positions + L * per_block + 2 * C   # head tied to wte; final LayerNorm


class KVCache:
    """Keys and values of every layer for the positions generated so far.

    Pre-allocated to the full length so a step writes in place instead of
    concatenating (which would copy the whole cache every token).
    """

    def __init__(self, config, batch_size, max_len, device, dtype):
        D = config.n_embd // config.n_head
        shape = (config.n_layer, batch_size, config.n_head, max_len, D)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.pos = 0  # number of positions already stored

    def update(self, layer, k, v):
        """Store k, v (B, H, T_new, D) for one layer; return all keys/values so far."""
        T_new = k.size(2)
        self.k[layer, :, :, self.pos:self.pos + T_new] = k
        self.v[layer, :, :, self.pos:self.pos + T_new] = v
        end = self.pos + T_new
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


def rope_tables(head_size, max_len, base=10000.0):
    """cos and sin of the rotation angles, (max_len, D/2) each: position t turns pair i by t * base^(-2i/D)."""
    inv_freq = base ** (-torch.arange(0, head_size, 2).float() / head_size)   # (D/2,)
    angles = torch.outer(torch.arange(max_len).float(), inv_freq)            # (T, D/2)
    return angles.cos(), angles.sin()


def apply_rope(x, cos, sin):
    """Rotate each pair (x[..., :D/2], x[..., D/2:]) of x (B, H, T, D) by its position's angle."""
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class CausalSelfAttention(nn.Module):

    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.dropout = config.dropout

    def forward(self, x, cache=None, layer=0, rope=None):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        past = 0 if cache is None else cache.pos
        if rope is not None:  # rotate q and k by their absolute positions; q.k then depends on the offset only
            cos, sin = rope
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, H, past + T, D)
        dropout_p = self.dropout if self.training else 0.0
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p)
        elif T == 1:
            # one new query may look at every cached position: no mask needed
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        else:
            # several new queries after a cached prefix: query i sees keys <= past + i
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble heads side by side
        return self.c_proj(y)


class MLP(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x, cache=None, layer=0, rope=None):
        x = x + self.attn(self.ln_1(x), cache, layer, rope)
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        if config.rope:
            cos, sin = rope_tables(config.n_embd // config.n_head, config.block_size)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        else:
            self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.apply(self._init_weights)
        # GPT-2: scale the residual projections by 1/sqrt(2 * n_layer) so the
        # residual stream's variance does not grow with depth
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, cache=None, return_hidden=False):
        """idx (B, T) token ids -> logits (B, T, V). With a cache, idx holds only the new tokens.
        return_hidden: the final hidden states (B, T, C) instead (a reward model reads them)."""
        B, T = idx.size()
        past = 0 if cache is None else cache.pos
        if past + T > self.config.block_size:
            raise ValueError(f"sequence of {past + T} tokens is longer than block_size {self.config.block_size}")
        if self.config.rope:
            rope = (self.rope_cos[past:past + T], self.rope_sin[past:past + T])  # (T, D/2) each
            x = self.drop(self.wte(idx))  # (B, T, C)
        else:
            rope = None
            pos = torch.arange(past, past + T, device=idx.device)  # (T,)
            x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        for layer, block in enumerate(self.blocks):
            x = block(x, cache, layer, rope)
        if cache is not None:
            cache.pos += T
        x = self.ln_f(x)  # (B, T, C)
        if return_hidden:
            return x
        return F.linear(x, self.wte.weight)  # tied head: (B, T, V)

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, stop_tokens=(),
                 use_cache=True, generator=None):
        """Continue idx (B, T) by up to max_new_tokens tokens.

        temperature 0 means greedy. A row stops after it emits one of stop_tokens
        (the stop token is kept); rows that stopped are padded with their stop
        token. Returns the new tokens only, (B, T_new). use_cache=False recomputes
        the whole prefix each step: same numbers, kept for tests and the benchmark.
        generator: one torch.Generator for the whole block, or a list of B, one per row
        (sampling.SampleStreams: then a row's tokens do not depend on the rows beside it).
        """
        B, T = idx.size()
        max_new_tokens = min(max_new_tokens, self.config.block_size - T)
        p = next(self.parameters())
        cache = KVCache(self.config, B, T + max_new_tokens, p.device, p.dtype) if use_cache else None
        stop = torch.tensor(list(stop_tokens) or [-1], device=idx.device)
        done = torch.zeros(B, dtype=torch.bool, device=idx.device)
        seq, new = idx, []
        step_input = idx
        for _ in range(max_new_tokens):
            logits = self(step_input, cache) if use_cache else self(seq)
            logits = logits[:, -1, :].float()  # (B, V)
            if temperature == 0:
                next_id = logits.argmax(dim=-1)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = F.softmax(logits, dim=-1)
                if isinstance(generator, (list, tuple)):  # each row draws from its own stream
                    next_id = torch.cat([torch.multinomial(row, 1, generator=g) for row, g in zip(probs, generator)])
                else:
                    next_id = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            if new:  # a finished row repeats its stop token
                next_id = torch.where(done, new[-1], next_id)
            new.append(next_id)
            done = done | torch.isin(next_id, stop)
            step_input = next_id[:, None]
            if not use_cache:
                seq = torch.cat([seq, step_input], dim=1)
            if bool(done.all()):
                break
        if not new:
            return idx.new_zeros(B, 0)
        return torch.stack(new, dim=1)
