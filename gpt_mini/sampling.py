"""
Generation helpers on top of GPT.generate: plain-text completion (pretraining),
chat replies (SFT, DPO, RLVR evaluation) and groups of samples (RLVR training).

Prompts are batched by length: GPT.generate takes a (B, T) block without padding,
and prompts of one length can share a KV cache and one forward per new token.
"""

import collections

import numpy as np
import torch

from .runtime import evaluation
from .tokenizer import BOS, END, encode_text, render_prompt

# Fixed prompts for the pretraining samples (plain text, no chat template).
PRETRAIN_PROMPTS = ["Rurair lives in", "We add 47 + 38.", "What kind of pet does Zuvail keep?"]


def _by_length(prompt_ids):
    groups = collections.defaultdict(list)
    for i, ids in enumerate(prompt_ids):
        groups[len(ids)].append(i)
    return groups


@evaluation
def generate_ids(model, prompt_ids, max_new_tokens, temperature=0.0, stop_tokens=(), batch_size=64,
                 generator=None, top_k=None, return_finished=False):
    """list of prompt id lists -> list of generated id lists (stop token removed).

    With return_finished, also a list of bools: did the row emit a stop token
    (rather than run out of max_new_tokens)? generator: one torch.Generator, or one per
    prompt (a list, SampleStreams.for_step), each row then sampling from its own.
    """
    device = next(model.parameters()).device
    out, finished = [None] * len(prompt_ids), [False] * len(prompt_ids)
    for _, idxs in sorted(_by_length(prompt_ids).items()):
        for start in range(0, len(idxs), batch_size):
            chunk = idxs[start:start + batch_size]
            x = torch.tensor([prompt_ids[i] for i in chunk], dtype=torch.long, device=device)
            rows_generator = [generator[i] for i in chunk] if isinstance(generator, list) else generator
            new = model.generate(x, max_new_tokens, temperature=temperature, top_k=top_k,
                                 stop_tokens=stop_tokens, generator=rows_generator).tolist()
            for i, row in zip(chunk, new):
                cut = next((j for j, t in enumerate(row) if t in stop_tokens), len(row))
                out[i], finished[i] = row[:cut], cut < len(row)
    return (out, finished) if return_finished else out


def complete(model, enc, texts, device=None, max_new_tokens=40):
    """Greedy plain-text continuation of each text (a document starts with <|bos|>)."""
    bos = enc.encode_single_token(BOS)
    prompt_ids = [[bos] + encode_text(enc, t) for t in texts]
    new = generate_ids(model, prompt_ids, max_new_tokens, stop_tokens=(bos,))
    return [enc.decode(ids) for ids in new]


def chat_replies(model, enc, prompts, max_new_tokens=64, temperature=0.0, generator=None,
                 return_finished=False):
    """Assistant replies to user prompts (str or message lists), decoded, without <|end|>.

    With return_finished, also whether each reply closed its turn with <|end|>.
    """
    end = enc.encode_single_token(END)
    prompt_ids = [render_prompt(enc, p) for p in prompts]
    new, finished = generate_ids(model, prompt_ids, max_new_tokens, temperature=temperature,
                                 stop_tokens=(end,), generator=generator, return_finished=True)
    replies = [enc.decode(ids) for ids in new]
    return (replies, finished) if return_finished else replies


class SampleStreams:
    """The random streams the RL loop samples its completions with.

    A plain run (python 04_rlvr.py): one stream for the whole run, seeded once, as it always was.
    Under torchrun (per_sample=True, any number of ranks): one stream per sample, seeded by (seed, step,
    the sample's index in the step's global batch) only. Then a sample's tokens do not depend on which rank
    draws it, nor on the rows batched beside it: N ranks with P/N prompts each draw exactly the samples one
    process with P prompts draws (up to float noise in the forward passes), so the RL run is the same at any N.
    """

    def __init__(self, seed, device, per_sample):
        self.seed, self.device, self.per_sample = seed, device, per_sample
        self.run_stream = None if per_sample else torch.Generator(device=device).manual_seed(seed)

    def for_step(self, step, first_index, count):
        """The generator argument of generate_ids for a rank's count samples of a step, the first of them
        number first_index of the step's global batch."""
        if not self.per_sample:
            return self.run_stream
        return [torch.Generator(device=self.device).manual_seed(
            int(np.random.SeedSequence([self.seed, step, i]).generate_state(1)[0]))
            for i in range(first_index, first_index + count)]
