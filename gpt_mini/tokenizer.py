"""
Byte-level BPE: a small trainer written here, and tiktoken to encode with it.

The trainer learns merges on our corpus and writes them in tiktoken's rank-file
format (one "base64(token bytes) rank" per line). Loading gives a real
`tiktoken.Encoding`, so encoding is fast and battle-tested while the learning
part stays readable. Digits are split one at a time by the pre-tokenizer, so
"385" is always the three tokens 3, 8, 5 and arithmetic can be worked digit by digit.

Chat template (the messages format of HF/TRL):

    <|bos|> <|user|> question <|end|> <|assistant|> answer <|end|> ...

`render_chat` returns the ids and a response mask that is 1 exactly on the
assistant's content tokens and the <|end|> that closes its turn: what SFT trains
on and what DPO/RLVR score.

Retrain on your own text:
    python -m gpt_mini.tokenizer --train my_text.txt --vocab-size 2048 --out data/my_tokenizer.tiktoken
"""

import argparse
import base64
import collections
import hashlib
import os
import re

import tiktoken

from . import data_path

DEFAULT_PATH = data_path("tokenizer.tiktoken")

BOS, USER, ASSISTANT, END, PAD = "<|bos|>", "<|user|>", "<|assistant|>", "<|end|>", "<|pad|>"
SPECIAL_TOKENS = [BOS, USER, ASSISTANT, END, PAD]
ROLE_TOKEN = {"user": USER, "assistant": ASSISTANT}

# GPT-4's split pattern with one change: \p{N} instead of \p{N}{1,3}, one digit per chunk.
SPLIT_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}"""
                 r"""| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+""")
# The same pattern in Python's `re` (no \p{..}): letters = [^\W\d_], digits = \d.
# Used only to count words while training; encoding always uses SPLIT_PATTERN.
_TRAIN_SPLIT = re.compile(r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\w]?+[^\W\d_]+|\d"""
                          r"""| ?[^\s\w]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+""")


def train_bpe(text, vocab_size):
    """Learn byte-pair merges on text. Returns {token bytes: rank}, ranks 0..vocab_size-1.

    Ranks 0..255 are the single bytes; each merge adds the pair that occurs most
    often (ties broken by the smaller pair, so training is deterministic).
    Stops early when no pair occurs twice.
    """
    assert vocab_size >= 256
    word_counts = collections.Counter(_TRAIN_SPLIT.findall(text))
    words = [[bytes([b]) for b in w.encode("utf-8")] for w in word_counts]
    freqs = list(word_counts.values())
    pair_counts = collections.Counter()
    where = collections.defaultdict(set)  # pair -> indices of words containing it
    for i, w in enumerate(words):
        for pair in zip(w, w[1:]):
            pair_counts[pair] += freqs[i]
            where[pair].add(i)
    ranks = {bytes([b]): b for b in range(256)}
    while len(ranks) < vocab_size and pair_counts:
        best = max(pair_counts.items(), key=lambda kv: (kv[1], _neg(kv[0])))
        (a, b), count = best
        if count < 2:
            break
        merged = a + b
        ranks[merged] = len(ranks)
        for i in list(where[(a, b)]):
            w = words[i]
            for pair in zip(w, w[1:]):  # remove this word's old pairs
                pair_counts[pair] -= freqs[i]
                if pair_counts[pair] <= 0:
                    del pair_counts[pair]
            new_w, j = [], 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    new_w.append(merged)
                    j += 2
                else:
                    new_w.append(w[j])
                    j += 1
            words[i] = new_w
            for pair in zip(new_w, new_w[1:]):
                pair_counts[pair] += freqs[i]
                where[pair].add(i)
        del where[(a, b)]
    return ranks


def _neg(pair):
    # max() picks the largest key; invert bytes so the lexicographically smallest pair wins ties
    return tuple(bytes(255 - x for x in part) for part in pair)


def save_ranks(ranks, path):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
            f.write(f"{base64.b64encode(token).decode()} {rank}\n")
    os.replace(tmp, path)


def read_ranks(path):
    """The rank file (one "base64(token) rank" per line, tiktoken's format) -> {token bytes: rank}.

    Read here rather than with tiktoken.load.load_tiktoken_bpe, which caches every file it reads
    under its path in the system's temp folder: a tokenizer retrained into the same path would
    then still load as the old one."""
    with open(path, "rb") as f:
        return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in f if line.strip())}


def load_tokenizer(path=DEFAULT_PATH):
    """The project's tokenizer as a tiktoken.Encoding; specials follow the learned ranks."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"tokenizer file {path} not found; "
                                "train one with `python -m gpt_mini.tokenizer --train FILE`")
    ranks = read_ranks(path)
    specials = {tok: len(ranks) + i for i, tok in enumerate(SPECIAL_TOKENS)}
    return tiktoken.Encoding(name=os.path.basename(path), pat_str=SPLIT_PATTERN,
                             mergeable_ranks=ranks, special_tokens=specials)


def tokenizer_id(path=DEFAULT_PATH):
    """A short fingerprint of the tokenizer, stored in checkpoints to catch mismatches."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read() + "|".join(SPECIAL_TOKENS).encode()).hexdigest()[:16]


def encode_text(enc, text):
    """Plain text -> ids. Special-token strings inside text are encoded as ordinary text."""
    return enc.encode_ordinary(text)


def render_chat(enc, messages):
    """messages [{"role", "content"}, ...] -> (ids, response_mask), lists of equal length."""
    ids, mask = [enc.encode_single_token(BOS)], [0]
    end = enc.encode_single_token(END)
    for m in messages:
        role = m["role"]
        if role not in ROLE_TOKEN:
            raise ValueError(f"unknown role {role!r}: expected 'user' or 'assistant'")
        content = encode_text(enc, m["content"])
        is_reply = int(role == "assistant")
        ids += [enc.encode_single_token(ROLE_TOKEN[role])] + content + [end]
        mask += [0] + [is_reply] * (len(content) + 1)
    return ids, mask


def render_prompt(enc, prompt):
    """A user prompt (str) or message list ending in a user turn -> ids ending with <|assistant|>."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    ids, _ = render_chat(enc, messages)
    return ids + [enc.encode_single_token(ASSISTANT)]


def main():
    parser = argparse.ArgumentParser(description="Train the byte-level BPE tokenizer on a text file.")
    parser.add_argument("--train", nargs="+", required=True, help="text file(s) to learn merges from")
    parser.add_argument("--vocab-size", type=int, default=2048 - len(SPECIAL_TOKENS),
                        help="number of byte/merge tokens (the 5 special tokens come on top)")
    parser.add_argument("--out", default=DEFAULT_PATH, help="where to write the tiktoken rank file")
    args = parser.parse_args()
    text = ""
    for path in args.train:
        with open(path, encoding="utf-8") as f:
            text += f.read()
    if not text.strip():
        raise SystemExit(f"error: {args.train} holds no text to train on")
    ranks = train_bpe(text, args.vocab_size)
    save_ranks(ranks, args.out)
    enc = load_tokenizer(args.out)
    n = len(enc.encode_ordinary(text))
    print(f"wrote {args.out}: {len(ranks)} tokens + {len(SPECIAL_TOKENS)} specials; "
          f"{len(text.encode())} bytes -> {n} tokens ({len(text.encode()) / n:.2f} bytes/token)")


if __name__ == "__main__":
    main()
