"""What users bring: a full disk during a save, JSON arrays and TRL's implicit-prompt pairs as --data."""

import errno
import json
import os
from collections import namedtuple

import pytest
import torch
from test_checkpoint import tiny_model

from gpt_mini import checkpoint, data, errors, runlog, sweep
from gpt_mini.tokenizer import load_tokenizer, render_prompt


@pytest.fixture(scope="module")
def enc():
    return load_tokenizer()


# ----------------------------------------------------------------------------- a full disk

def _full_disk_on_the_next_save(monkeypatch, error):
    real_save = torch.save

    def save(state, path, *args, **kwargs):
        with open(path, "wb") as f:  # half a file, then the disk is full
            f.write(b"PK\x03\x04 partial")
        raise error
    monkeypatch.setattr(checkpoint.torch, "save", save)
    return real_save


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos")])
def test_a_full_disk_during_a_save_keeps_the_last_checkpoint_and_says_so_in_one_sentence(tmp_path, monkeypatch,
                                                                                          error):
    path = str(tmp_path / "model.pt")
    model = tiny_model()
    checkpoint.save_checkpoint(path, model, "sft", 100)
    good = open(path, "rb").read()
    _full_disk_on_the_next_save(monkeypatch, error)
    if isinstance(error, RuntimeError):  # torch.save's own report has no errno: the free space tells
        usage = namedtuple("usage", "total used free")
        monkeypatch.setattr(errors.shutil, "disk_usage", lambda _: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(errors.UserError) as caught:
        checkpoint.save_checkpoint(path, model, "sft", 200)
    message = str(caught.value)
    assert message.startswith(f"could not write {path} (the disk is full")
    assert message.endswith(f"the last good checkpoint in {path} (step 100) is kept as it was")
    assert "\n" not in message
    assert open(path, "rb").read() == good and checkpoint.load_checkpoint(path)["step"] == 100
    assert os.listdir(tmp_path) == ["model.pt"]  # the half-written temporary file is gone


def test_a_save_that_fails_for_another_reason_names_it(tmp_path, monkeypatch):
    path = str(tmp_path / "model.pt")
    _full_disk_on_the_next_save(monkeypatch, OSError(errno.EACCES, "Permission denied"))
    with pytest.raises(errors.UserError, match=r"\(Permission denied\); no checkpoint had been written there yet"):
        checkpoint.save_checkpoint(path, tiny_model(), "sft", 1)
    assert os.listdir(tmp_path) == []


def test_a_metrics_line_that_cannot_be_written_names_the_file(tmp_path, monkeypatch):
    log = runlog.MetricsLogger(str(tmp_path / "metrics.jsonl"))
    log.log({"step": 1, "loss": 1.0})

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("builtins.open", full)
    with pytest.raises(errors.UserError, match=r"^could not write .*metrics.jsonl \(the disk is full"):
        log.log({"step": 2, "loss": 0.5})


# ----------------------------------------------------------------------------- JSON arrays, implicit prompts

PAIRS = [{"prompt": "Is the sky green?", "chosen": "No, it is blue.", "rejected": "Yes."},
         {"prompt": "Is grass blue?", "chosen": "No, it is green.", "rejected": "Yes, it is."}]


def test_a_json_array_reads_like_jsonl(tmp_path, enc):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    array = tmp_path / "preference_data.json"
    array.write_text(json.dumps(PAIRS, indent=2))
    assert data.encode_pairs(enc, str(array), 128).examples == data.encode_pairs(enc, str(jsonl), 128).examples
    assert data.load_jsonl(str(array)) == PAIRS


@pytest.mark.parametrize("text, line, message", [
    ('[\n  {"prompt": "p", "chosen": "c", "rejected": "r"},\n  {"prompt": "p", "chosen": "c"}\n]', 3,
     "missing 'rejected'"),
    ('[\n  {"prompt": "p", "chosen": "c", "rejected": "r"},\n  "just a string"\n]', 3, "expected a JSON object"),
    ('[\n  {"prompt": "p", "chosen": "c", "rejected": "r"}\n  {"prompt": "p"}\n]', 3, "expected ',' or ']'"),
    ('[\n  {"prompt": "p", "chosen": "c",\n   "rejected": }\n]', 3, "invalid JSON"),
    ('[{"prompt": "p", "chosen": "c", "rejected": "r"}]\n\n[]', 3, "text after the end of the array"),
])
def test_a_bad_json_array_names_file_and_line(tmp_path, enc, text, line, message):
    path = tmp_path / "pairs.json"
    path.write_text(text)
    with pytest.raises(data.DataError) as err:
        data.encode_pairs(enc, str(path), 128)
    assert str(err.value).startswith(f"{path}:{line}: ") and message in str(err.value), str(err.value)


def _turn(role, content):
    return {"role": role, "content": content}


def test_implicit_prompt_pairs_take_the_shared_messages_as_the_prompt(tmp_path, enc):
    """Anthropic HH / TRL's implicit prompt: whole conversations, no 'prompt' key."""
    history = [_turn("user", "Hi."), _turn("assistant", "Hello!"), _turn("user", "Is the sky green?")]
    implicit = {"chosen": history + [_turn("assistant", "No, it is blue.")],
                "rejected": history + [_turn("assistant", "Yes.")]}
    explicit = {"prompt": history, "chosen": "No, it is blue.", "rejected": "Yes."}
    path = tmp_path / "hh.jsonl"
    path.write_text(json.dumps(implicit) + "\n" + json.dumps(explicit) + "\n")
    a, b = data.encode_pairs(enc, str(path), 128).examples
    assert a == b and a["prompt_ids"] == render_prompt(enc, history)


@pytest.mark.parametrize("pair, message", [
    ({"chosen": [_turn("user", "Is it?"), _turn("assistant", "No.")],
      "rejected": [_turn("user", "Was it?"), _turn("assistant", "Yes.")]}, "no prompt: 'chosen' and 'rejected' share"),
    ({"chosen": "No.", "rejected": "Yes."}, "missing 'prompt'"),
    ({"chosen": [_turn("user", "Is it?"), _turn("assistant", "No.")],
      "rejected": [_turn("user", "Is it?")]}, "no reply after their shared prompt"),
])
def test_an_implicit_pair_without_a_prompt_is_refused_with_file_and_line(tmp_path, enc, pair, message):
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps([PAIRS[0], pair], indent=1))
    with pytest.raises(data.DataError) as err:
        data.encode_pairs(enc, str(path), 128)
    assert str(err.value).startswith(f"{path}:") and message in str(err.value), str(err.value)


# ----------------------------------------------------------------------------- the sweep runs the script per beta

@pytest.mark.parametrize("argv, rest", [
    (["--beta", "0.01", "0.1", "--steps", "5"], ["--steps", "5"]),
    (["--quick", "--beta", "0.5", "1"], ["--quick"]),
    (["--beta=0.3", "--out", "x"], ["--out", "x"]),
])
def test_the_sweep_gives_each_run_its_own_beta(argv, rest):
    assert sweep.without_beta_flag(argv) == rest


def test_sft_on_preference_pairs_trains_on_the_prompt_and_the_chosen_reply(tmp_path, enc):
    """Preferred-FT: 02_sft.py --data pairs.jsonl is SFT on the good answers of the pairs."""
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    chats = tmp_path / "chats.jsonl"
    chats.write_text("".join(json.dumps({"messages": [_turn("user", p["prompt"]), _turn("assistant", p["chosen"])]})
                             + "\n" for p in PAIRS))
    got = data.encode_conversations(enc, str(pairs), 128).examples
    want = data.encode_conversations(enc, str(chats), 128).examples
    assert [(e["ids"], e["mask"]) for e in got] == [(e["ids"], e["mask"]) for e in want]
