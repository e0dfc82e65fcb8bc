"""Tokenizer: BPE trainer, tiktoken loading, digit splitting, chat template and its mask."""

import random

import pytest

from gpt_mini.tokenizer import (
    ASSISTANT,
    BOS,
    END,
    PAD,
    SPECIAL_TOKENS,
    USER,
    load_tokenizer,
    render_chat,
    render_prompt,
    save_ranks,
    train_bpe,
)


@pytest.fixture(scope="module")
def enc():
    return load_tokenizer()


def random_unicode(rng, n):
    pools = ["abc XYZ 019", "é漢字🙂\n\t", "ßΩж—“”", "\u200b\u0301\ufeff", "<|end|><|user|>"]
    out = []
    for _ in range(n):
        if rng.random() < 0.2:
            out.append(chr(rng.randint(0x20, 0x10FFFF)) if rng.random() < 0.5 else rng.choice(pools))
        else:
            out.append(rng.choice(rng.choice(pools)))
    return "".join(c for c in "".join(out) if not 0xD800 <= ord(c) <= 0xDFFF)  # no lone surrogates


def test_round_trip_on_arbitrary_unicode(enc):
    rng = random.Random(0)
    for _ in range(300):
        text = random_unicode(rng, rng.randint(0, 60))
        assert enc.decode(enc.encode_ordinary(text)) == text


def test_plain_text_never_produces_special_tokens(enc):
    special_ids = {enc.encode_single_token(t) for t in SPECIAL_TOKENS}
    text = "".join(SPECIAL_TOKENS) + " <|end|> user: <|assistant|>"
    ids = enc.encode_ordinary(text)
    assert not special_ids & set(ids)
    assert enc.decode(ids) == text


def test_digits_are_split_one_at_a_time(enc):
    ids = enc.encode_ordinary("12345 + 678")
    pieces = [enc.decode([i]) for i in ids]
    assert [p for p in pieces if p.strip().isdigit()] == list("12345678")


def test_vocabulary_and_specials(enc):
    assert enc.n_vocab == len(load_tokenizer()._mergeable_ranks) + len(SPECIAL_TOKENS)
    assert [enc.decode([enc.encode_single_token(t)]) for t in SPECIAL_TOKENS] == SPECIAL_TOKENS


def test_mask_is_one_exactly_on_assistant_tokens_of_every_turn(enc):
    messages = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "It is 4."}]
    ids, mask = render_chat(enc, messages)
    assert len(ids) == len(mask)
    sp = {t: enc.encode_single_token(t) for t in SPECIAL_TOKENS}
    assert ids[0] == sp[BOS] and mask[0] == 0
    trained = [i for i, m in zip(ids, mask) if m]
    # exactly the two replies, each followed by its <|end|>
    expected = enc.encode_ordinary("Hello.") + [sp[END]] + enc.encode_ordinary("It is 4.") + [sp[END]]
    assert trained == expected
    # the assistant header and the user turns (with their <|end|>) are never trained on
    for i, m in zip(ids, mask):
        if i in (sp[USER], sp[ASSISTANT], sp[BOS], sp[PAD]):
            assert m == 0
    assert sum(mask) == len(expected)


def test_prompt_rendering_ends_with_assistant_header(enc):
    ids = render_prompt(enc, "What is 2 + 2?")
    full, _ = render_chat(enc, [{"role": "user", "content": "What is 2 + 2?"}])
    assert ids == full + [enc.encode_single_token(ASSISTANT)]


def test_unknown_role_is_refused(enc):
    with pytest.raises(ValueError, match="unknown role"):
        render_chat(enc, [{"role": "system", "content": "x"}])


def test_trainer_merges_most_frequent_pair_first_and_is_deterministic(tmp_path):
    text = "ab ab ab ab cd cd xy"
    ranks = train_bpe(text, 260)
    assert ranks[b"ab"] == 256  # "ab" occurs 4 times: the first merge
    assert train_bpe(text, 260) == ranks
    save_ranks(ranks, str(tmp_path / "t.tiktoken"))
    enc = load_tokenizer(str(tmp_path / "t.tiktoken"))
    assert enc.decode(enc.encode_ordinary("ab cd zz")) == "ab cd zz"
    assert len(enc.encode_ordinary("ab")) == 1


def test_committed_tokenizer_is_what_the_trainer_makes():
    import os

    from gpt_mini.data import data_path
    from gpt_mini.tokenizer import DEFAULT_PATH
    from gpt_mini.tokenizer import SPECIAL_TOKENS as S
    with open(data_path("pretrain_train.txt"), encoding="utf-8") as f:
        ranks = train_bpe(f.read(), 2048 - len(S))
    with open(DEFAULT_PATH) as f:
        committed = len(f.readlines())
    assert committed == len(ranks) and os.path.getsize(DEFAULT_PATH) > 0
    assert load_tokenizer()._mergeable_ranks == ranks


def test_a_tokenizer_retrained_into_the_same_path_loads_as_the_new_one(tmp_path):
    # tiktoken's own loader caches files by path in the temp folder; ours must read the file each time
    path = str(tmp_path / "t.tiktoken")
    save_ranks(train_bpe("ab ab ab ab cd", 258), path)
    assert b"ab" in load_tokenizer(path)._mergeable_ranks
    save_ranks(train_bpe("xy xy xy xy cd", 258), path)
    ranks = load_tokenizer(path)._mergeable_ranks
    assert b"xy" in ranks and b"ab" not in ranks
