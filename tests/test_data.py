"""Data readers: bad input is refused with file:line, long examples follow the documented rule."""

import json

import pytest

from gpt_mini import data
from gpt_mini.tokenizer import load_tokenizer, render_prompt


@pytest.fixture(scope="module")
def enc():
    return load_tokenizer()


def write_lines(path, objs):
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))
    return str(path)


def chat(user, reply):
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": reply}]}


@pytest.mark.parametrize("bad, message", [
    ("{not json", "invalid JSON"),
    ('["a list"]', "expected a JSON object"),
    ({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}]}, "unknown role 'robot'"),
    ({"messages": [{"content": "x"}]}, "needs a 'role'"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "  "}]}, "empty assistant turn"),
    ({"messages": [{"role": "user", "content": "x"}]}, "no assistant turn"),
    ({"messages": []}, "non-empty list"),
])
def test_malformed_conversation_names_file_and_line(tmp_path, enc, bad, message):
    path = write_lines(tmp_path / "sft.jsonl", [chat("a", "b"), bad])
    with pytest.raises(data.DataError) as err:
        data.encode_conversations(enc, path, 128)
    assert f"{path}:2:" in str(err.value) and message in str(err.value)


def test_skip_bad_counts_instead_of_stopping(tmp_path, enc):
    no_reply = {"messages": [{"role": "user", "content": "x"}]}
    path = write_lines(tmp_path / "sft.jsonl", [chat("a", "b"), "{broken", no_reply])
    out = data.encode_conversations(enc, path, 128, skip_bad=True)
    assert len(out.examples) == 1 and out.skipped == {"malformed": 2}


def test_long_conversation_loses_prompt_from_the_left_and_is_counted(tmp_path, enc):
    path = write_lines(tmp_path / "sft.jsonl", [chat("word " * 200, "Short reply.")])
    out = data.encode_conversations(enc, path, 64)
    ex = out.examples[0]
    assert out.truncated == 1 and len(ex["ids"]) == 64
    assert ex["ids"][0] == enc.encode_single_token("<|bos|>")
    reply = enc.encode_ordinary("Short reply.") + [enc.encode_single_token("<|end|>")]
    assert [i for i, m in zip(ex["ids"], ex["mask"]) if m] == reply  # the trained tokens are all kept


def test_reply_longer_than_context_is_skipped_and_counted(tmp_path, enc):
    path = write_lines(tmp_path / "sft.jsonl", [chat("hi", "word " * 200), chat("hi", "ok")])
    out = data.encode_conversations(enc, path, 64)
    assert len(out.examples) == 1 and out.skipped == {"response longer than the context": 1}
    assert "1 skipped" in out.summary()


def test_pairs_strings_and_message_lists_give_the_same_tokens(tmp_path, enc):
    path = write_lines(tmp_path / "p.jsonl", [
        {"prompt": "Is the sky green?", "chosen": "No, it is blue.", "rejected": "Yes."},
        {"prompt": [{"role": "user", "content": "Is the sky green?"}],
         "chosen": [{"role": "assistant", "content": "No, it is blue."}],
         "rejected": [{"role": "assistant", "content": "Yes."}]}])
    a, b = data.encode_pairs(enc, path, 128).examples
    assert a["prompt_ids"] == b["prompt_ids"] == render_prompt(enc, "Is the sky green?")
    assert a["chosen_ids"] == b["chosen_ids"] and a["rejected_ids"] == b["rejected_ids"]


@pytest.mark.parametrize("bad, message", [
    ({"prompt": "p", "chosen": "", "rejected": "r"}, "empty 'chosen'"),
    ({"prompt": "p", "chosen": "c", "rejected": "   "}, "empty 'rejected'"),
    ({"prompt": "p", "chosen": "c"}, "missing 'rejected'"),
    ({"prompt": 5, "chosen": "c", "rejected": "r"}, "'prompt' must be"),
    ("{oops", "invalid JSON"),
])
def test_bad_pair_names_file_and_line(tmp_path, enc, bad, message):
    path = write_lines(tmp_path / "p.jsonl", [{"prompt": "p", "chosen": "c", "rejected": "r"}, bad])
    with pytest.raises(data.DataError) as err:
        data.encode_pairs(enc, path, 128)
    assert f"{path}:2:" in str(err.value) and message in str(err.value)


def test_identical_pair_is_skipped_and_long_prompt_truncated_from_left(tmp_path, enc):
    path = write_lines(tmp_path / "p.jsonl", [
        {"prompt": "p", "chosen": "same", "rejected": "same"},
        {"prompt": "long " * 100, "chosen": "Yes, it is.", "rejected": "No."}])
    out = data.encode_pairs(enc, path, 48)
    assert out.skipped == {"chosen equals rejected": 1} and out.truncated == 1
    ex = out.examples[0]
    assert len(ex["prompt_ids"]) + len(ex["chosen_ids"]) == 48
    assert ex["prompt_ids"][0] == enc.encode_single_token("<|bos|>")
    assert ex["prompt_ids"][-1] == enc.encode_single_token("<|assistant|>")  # the header survives


def test_pair_batch_puts_chosen_rows_first_and_masks_only_responses(enc):
    ex = [{"prompt_ids": [1, 2, 3], "chosen_ids": [4, 5], "rejected_ids": [6]},
          {"prompt_ids": [1, 2], "chosen_ids": [7], "rejected_ids": [8, 9, 10]}]
    ids, mask, lengths = data.pair_batch(ex, pad_id=0)
    assert ids.tolist() == [[1, 2, 3, 4, 5], [1, 2, 7, 0, 0], [1, 2, 3, 6, 0], [1, 2, 8, 9, 10]]
    assert mask.tolist() == [[0, 0, 0, 1, 1], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 1, 1, 1]]
    assert lengths.tolist() == [2, 1, 1, 3]


def test_tasks_need_prompt_and_answer(tmp_path):
    path = write_lines(tmp_path / "t.jsonl", [{"prompt": "1+1?", "answer": "2"}, {"prompt": "x"}])
    with pytest.raises(data.DataError, match=r"t.jsonl:2: missing 'answer'"):
        data.load_tasks(path)


@pytest.mark.parametrize("answer", ["four", "4.0", "1,000", "+5", "42 apples", True, 4.0, [4]])
def test_tasks_whose_answer_the_verifier_can_never_match_are_refused(tmp_path, answer):
    path = write_lines(tmp_path / "t.jsonl", [{"prompt": "1+1?", "answer": "2"}, {"prompt": "2+2?", "answer": answer}])
    with pytest.raises(data.DataError) as err:
        data.load_tasks(path)
    assert str(err.value) == (f"{path}:2: 'answer' must be an integer in digits such as \"42\" or \"-7\" "
                              f"(the verifier reads nothing else, so every reward would be 0), got {answer!r}")


def test_tasks_with_integer_answers_load_as_the_verifier_reads_them(tmp_path):
    path = write_lines(tmp_path / "t.jsonl", [{"prompt": "a", "answer": 42}, {"prompt": "b", "answer": " -7 "},
                                              {"prompt": "c", "answer": "085"}])
    assert [t["answer"] for t in data.load_tasks(path)] == ["42", " -7 ", "085"]


def test_task_prompt_that_fills_the_context_is_refused(tmp_path, enc):
    path = write_lines(tmp_path / "t.jsonl", [{"prompt": "1+1?", "answer": "2"},
                                              {"prompt": "word " * 40, "answer": "1"}])
    assert len(data.load_tasks(path)) == 2  # without a context to check against
    with pytest.raises(data.DataError, match=r"t.jsonl:2: the prompt is \d+ tokens with the chat template, which "
                                             r"leaves no room for an answer in the model's context of 64 tokens"):
        data.load_tasks(path, enc, 64)
    assert len(data.load_tasks(path, enc, 256)) == 2


def test_user_pretraining_text_holds_out_its_last_documents():
    docs = [f"Document {i}.\nIts second line." for i in range(40)]
    train, val, note = data.split_held_out("\n\n".join(docs) + "\n", "my.txt")
    assert train.split("\n\n") == docs[:38] and val.strip().split("\n\n") == docs[38:]
    assert note == "my.txt: the last 2 of 40 documents are held out"


def test_one_document_is_split_inside_and_never_held_out_whole():
    lines = [f"Line {i} of the only document." for i in range(40)]
    train, val, note = data.split_held_out("\n".join(lines) + "\n", "my.txt")
    assert train.split("\n") == lines[:38] and val.split("\n") == lines[38:]  # disjoint: held out means unseen
    assert note == "my.txt is one document (no blank line), so its last 2 of 40 lines are held out"


def test_one_line_cannot_be_held_out_and_is_refused():
    with pytest.raises(data.DataError) as err:
        data.split_held_out("one single line of text, however long it is\n", "my.txt")
    assert str(err.value) == ("my.txt: one document of one line, so nothing can be held out for evaluation; "
                              "give at least two documents separated by a blank line")


def test_missing_and_empty_files_are_clear(tmp_path):
    with pytest.raises(data.DataError, match="file not found"):
        data.read_text(str(tmp_path / "nope.txt"))
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(data.DataError, match="empty"):
        data.read_text(str(tmp_path / "empty.txt"))


NOT_UTF8 = [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ":3: the file looks binary (it has a NUL byte); give a UTF-8 text file"),
    ('{"prompt": "x", "answer": "1"}\n{"prompt": "café", "answer": "2"}\n'.encode("latin-1"),
     ":2: the file is not UTF-8 text (byte 0xe9 at byte 16 of the line); save it as UTF-8"),
]


@pytest.mark.parametrize("raw, message", NOT_UTF8)
def test_every_reader_refuses_binary_and_non_utf8_files_with_file_and_line(tmp_path, enc, raw, message):
    path = tmp_path / "bad"
    path.write_bytes(raw)
    for read in (data.read_text, data.load_jsonl, data.load_tasks,
                 lambda p: data.encode_conversations(enc, p, 128),
                 lambda p: data.encode_conversations(enc, p, 128, skip_bad=True),
                 lambda p: data.encode_pairs(enc, p, 128)):
        with pytest.raises(data.DataError) as err:
            read(str(path))
        assert str(err.value) == str(path) + message


def test_utf8_with_bom_and_windows_line_ends_reads_like_plain_utf8(tmp_path):
    path = tmp_path / "w.txt"
    path.write_bytes("\ufeffDoc one.\r\n\r\nDoc two, café.\r\n".encode("utf-8"))
    assert data.read_text(str(path)) == "Doc one.\n\nDoc two, café.\n"
    tasks = tmp_path / "t.jsonl"
    tasks.write_bytes(b'\xef\xbb\xbf{"prompt": "1+1?", "answer": "2"}\r\n')
    assert data.load_tasks(str(tasks)) == [{"prompt": "1+1?", "answer": "2"}]


def test_a_folder_as_data_file_is_refused(tmp_path):
    for read in (data.read_text, data.load_jsonl):
        with pytest.raises(data.DataError, match="is a folder, not a file"):
            read(str(tmp_path))
