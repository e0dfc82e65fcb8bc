"""
Reading the stage data: pretraining text, chat conversations, preference pairs,
prompt/answer tasks. Bad input is refused with the file and line; over-long
examples follow one documented rule and are counted.

Length rule (SFT and DPO): an example longer than the context (block_size) keeps
its response tokens and loses prompt tokens from the left (the <|bos|> stays).
If the response alone does not fit, the example is skipped. Both are counted and
printed by the stage.
"""

import json
import os
from dataclasses import dataclass, field

import torch

from . import data_path  # noqa: F401 - the stage scripts call data.data_path
from .errors import UserError
from .logprobs import pad_and_stack
from .tokenizer import BOS, END, PAD, encode_text, render_chat, render_prompt
from .verifier import is_readable_answer


class DataError(UserError, ValueError):
    """Bad input data; the message names the file and, where there is one, the line."""


def _read_bytes(path):
    """The file's bytes, or one sentence saying why not (missing, a folder, unreadable)."""
    if not os.path.exists(path):
        raise DataError(f"{path}: file not found")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, not a file")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror})") from None


def _decode_lines(path, raw):
    """UTF-8 text lines of a file's bytes -> [(line_number, line)]; binary or non-UTF-8 input
    is refused with the file and the first bad line (a UTF-8 byte-order mark is allowed)."""
    chunks = raw.splitlines(keepends=True)
    if b"\x00" in raw:  # text never has one; checked first, so a binary file is called binary
        line_no = next(i for i, chunk in enumerate(chunks, start=1) if b"\x00" in chunk)
        raise DataError(f"{path}:{line_no}: the file looks binary (it has a NUL byte); give a UTF-8 text file")
    lines = []
    for line_no, chunk in enumerate(chunks, start=1):
        try:
            line = chunk.decode("utf-8-sig" if line_no == 1 else "utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}:{line_no}: the file is not UTF-8 text (byte 0x{chunk[e.start]:02x} at "
                            f"byte {e.start + 1} of the line); save it as UTF-8") from None
        ending = len(line) - len(line.rstrip("\r\n"))
        lines.append((line_no, line[:len(line) - ending] + "\n" * (ending > 0)))  # \r\n and \r -> \n
    return lines


def read_jsonl(path, on_bad_line=None):
    """Yield (line_number, object) for each record of a JSONL file (one object per non-blank line) or of a
    JSON array of objects (the file's first character is '['; the line is where the item starts); a bad
    record names file:line.

    With on_bad_line, a record that is not a JSON object is passed to it (to be counted)
    instead of stopping the run. A file that is not UTF-8 text always stops it.
    """
    lines = _decode_lines(path, _read_bytes(path))
    first = next((line for _, line in lines if line.strip()), "")
    is_array = first.lstrip().startswith("[")
    records = _json_array(path, "".join(line for _, line in lines)) if is_array else _jsonl(lines)
    for line_no, obj in records:
        if isinstance(obj, json.JSONDecodeError):
            if on_bad_line is None:
                raise DataError(f"{path}:{line_no}: invalid JSON ({obj.msg})")
            on_bad_line(line_no)
            continue
        if not isinstance(obj, dict):
            if on_bad_line is None:
                raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(obj).__name__}")
            on_bad_line(line_no)
            continue
        yield line_no, obj


def _jsonl(lines):
    for line_no, line in lines:
        if line.strip():
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as e:
                yield line_no, e


def _json_array(path, text):
    """The items of a JSON array, one at a time, each with the line it starts on (the format of
    preference_data.json and of what `datasets` also reads)."""
    decoder = json.JSONDecoder()
    pos, counted = text.index("[") + 1, [0, 1]  # the line count up to counted[0]: items come in order

    def skip_space(pos):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        return pos

    def line_at(pos):
        counted[1] += text.count("\n", counted[0], pos)
        counted[0] = pos
        return counted[1]

    pos = skip_space(pos)
    if pos < len(text) and text[pos] == "]":
        pos = skip_space(pos + 1)
    else:
        while True:
            line_no = line_at(pos)
            try:
                obj, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
            yield line_no, obj
            pos = skip_space(pos)
            if pos < len(text) and text[pos] == ",":
                pos = skip_space(pos + 1)
                continue
            if pos < len(text) and text[pos] == "]":
                pos = skip_space(pos + 1)
                break
            raise DataError(f"{path}:{line_at(min(pos, len(text)))}: invalid JSON (expected ',' or ']' after an item "
                            f"of the array)")
    if pos < len(text):
        raise DataError(f"{path}:{line_at(pos)}: invalid JSON (text after the end of the array)")


def load_jsonl(path):
    return [obj for _, obj in read_jsonl(path)]


# ----------------------------------------------------------------------------- pretraining

def read_text(path):
    """A UTF-8 text file's content; missing, binary, non-UTF-8 or empty files are refused."""
    text = "".join(line for _, line in _decode_lines(path, _read_bytes(path)))
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    return text


def pretraining_tokens(enc, path, block_size, say=None):
    """The token streams of pretraining -> (training tokens, held-out tokens). path None: the embedded corpus
    (data/pretrain_train.txt and pretrain_val.txt); a user's file: the last 5% of its documents (or of its
    lines, for one document) are held out, and say() is told how it was split. Both must hold one window."""
    if path:
        train_text, val_text, split_note = split_held_out(read_text(path), path)
        if say is not None:
            say(split_note)
    else:
        train_text = read_text(data_path("pretrain_train.txt"))
        val_text = read_text(data_path("pretrain_val.txt"))
    train_tokens, val_tokens = encode_documents(enc, train_text), encode_documents(enc, val_text)
    if say is not None:
        say(f"{len(train_tokens):,} training tokens, {len(val_tokens):,} held-out")
    for name, tokens in (("training", train_tokens), ("held-out", val_tokens)):
        if len(tokens) < block_size + 2:
            raise DataError(f"the {name} text has {len(tokens)} tokens, too short for one window of "
                            f"{block_size + 1}; give more text or a smaller --block-size")
    return train_tokens, val_tokens


def split_held_out(text, path):
    """A user's pretraining text -> (training text, held-out text, a sentence saying how it was split).

    The last 5 % of its documents (separated by a blank line) are held out. A file with one
    document is split inside it instead: its last 5 % of lines are held out (and start a document
    of their own). One line cannot be split, so that is refused: the held-out set would be the
    training set.
    """
    docs = [d for d in text.split("\n\n") if d.strip()]
    if len(docs) > 1:
        n_val = max(1, len(docs) // 20)
        return ("\n\n".join(docs[:-n_val]), "\n\n".join(docs[-n_val:]),
                f"{path}: the last {n_val} of {len(docs)} documents are held out")
    lines = [line for line in docs[0].split("\n") if line.strip()]
    if len(lines) < 2:
        raise DataError(f"{path}: one document of one line, so nothing can be held out for evaluation; "
                        f"give at least two documents separated by a blank line")
    n_val = max(1, len(lines) // 20)
    return ("\n".join(lines[:-n_val]), "\n".join(lines[-n_val:]),
            f"{path} is one document (no blank line), so its last {n_val} of {len(lines)} lines are held out")


def encode_documents(enc, text):
    """Documents are separated by a blank line; each starts with <|bos|>. -> 1-D LongTensor."""
    bos = enc.encode_single_token(BOS)
    ids = []
    for doc in text.split("\n\n"):
        if doc.strip():
            ids.append(bos)
            ids.extend(encode_text(enc, doc.strip() + "\n"))
    return torch.tensor(ids, dtype=torch.long)


def random_windows(tokens, batch_size, block_size, generator):
    """B random windows of block_size + 1 tokens -> inputs x (B, T) and targets y (B, T)."""
    starts = torch.randint(len(tokens) - block_size - 1, (batch_size,), generator=generator)
    chunk = torch.stack([tokens[s:s + block_size + 1] for s in starts.tolist()])
    return chunk[:, :-1], chunk[:, 1:]


def fixed_windows(tokens, block_size, max_windows):
    """Non-overlapping windows from the start, for a held-out loss that is the same every time."""
    n = min(max_windows, (len(tokens) - 1) // block_size)
    x = torch.stack([tokens[i * block_size:(i + 1) * block_size] for i in range(n)])
    y = torch.stack([tokens[i * block_size + 1:(i + 1) * block_size + 1] for i in range(n)])
    return x, y


def unigram_loss(train_tokens, val_tokens, vocab_size):
    """Cross-entropy (nats/token) of val under train's token frequencies (add-one smoothed):
    the loss of a model that knows which tokens are common but nothing about context."""
    counts = torch.bincount(train_tokens, minlength=vocab_size).double() + 1.0
    logp = torch.log(counts / counts.sum())
    return -logp[val_tokens].mean().item()


# ----------------------------------------------------------------------------- chat (SFT)

@dataclass
class Encoded:
    """Tokenised examples plus the counts the stage reports."""
    examples: list = field(default_factory=list)   # each: dict with ids/mask or pair fields
    truncated: int = 0
    skipped: dict = field(default_factory=dict)

    def skip(self, reason):
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def summary(self):
        parts = [f"{len(self.examples)} examples"]
        if self.truncated:
            parts.append(f"{self.truncated} truncated (prompt cut from the left)")
        parts += [f"{n} skipped ({why})" for why, n in sorted(self.skipped.items())]
        return ", ".join(parts)


def check_messages(messages, where):
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: 'messages' must be a non-empty list")
    for m in messages:
        if not isinstance(m, dict) or "role" not in m:
            raise DataError(f"{where}: every message needs a 'role'")
        if m["role"] not in ("user", "assistant"):
            raise DataError(f"{where}: unknown role {m['role']!r} (expected 'user' or 'assistant')")
        if not isinstance(m.get("content"), str):
            raise DataError(f"{where}: message content must be a string")
        if m["role"] == "assistant" and not m["content"].strip():
            raise DataError(f"{where}: empty assistant turn")
    if not any(m["role"] == "assistant" for m in messages):
        raise DataError(f"{where}: the conversation has no assistant turn")


def fit_to_context(ids, mask, block_size):
    """Apply the length rule. Returns (ids, mask, status) with status 'ok', 'truncated' or 'skip'."""
    if len(ids) <= block_size:
        return ids, mask, "ok"
    first_trained = mask.index(1)
    cut = len(ids) - block_size
    if 1 + cut > first_trained:  # cutting that much would eat into trained tokens
        return ids, mask, "skip"
    return ids[:1] + ids[1 + cut:], mask[:1] + mask[1 + cut:], "truncated"


def encode_conversations(enc, path, block_size, skip_bad=False):
    """Conversations ({"messages": [...]}) -> examples with ids and the assistant mask. A preference pair
    (prompt/chosen/rejected, or the implicit-prompt form) becomes the conversation of its prompt and its
    chosen reply: SFT on the good answers ("Preferred-FT" in the DPO paper)."""
    out = Encoded()
    for line_no, obj in read_jsonl(path, (lambda _: out.skip("malformed")) if skip_bad else None):
        where = f"{path}:{line_no}"
        try:
            if "messages" not in obj and "chosen" in obj:
                obj = {**obj, "messages": chosen_conversation(obj, where)}
            check_messages(obj.get("messages"), where)
        except DataError:
            if skip_bad:
                out.skip("malformed")
                continue
            raise
        ids, mask = render_chat(enc, obj["messages"])
        ids, mask, status = fit_to_context(ids, mask, block_size)
        if status == "skip":
            out.skip("response longer than the context")
            continue
        out.truncated += status == "truncated"
        out.examples.append({"ids": ids, "mask": mask, "kind": obj.get("kind")})
    if not out.examples:
        raise DataError(f"{path}: no usable conversations")
    return out


def pad_batch(examples, pad_id):
    """Tokenised conversations (dicts with ids, mask) -> right-padded (input_ids (B, T), mask (B, T))."""
    return pad_and_stack([e["ids"] for e in examples], [e["mask"] for e in examples], pad_id)


# ----------------------------------------------------------------------------- preference pairs (DPO)

def _as_prompt(value, where):
    """prompt: a string or a list of messages (TRL's conversational format)."""
    if isinstance(value, str):
        if not value.strip():
            raise DataError(f"{where}: empty prompt")
        return value
    if isinstance(value, list) and value:
        for m in value:
            if (not isinstance(m, dict) or m.get("role") not in ("user", "assistant")
                    or not isinstance(m.get("content"), str)):
                raise DataError(f"{where}: prompt messages need role 'user'/'assistant' and string content")
        return value
    raise DataError(f"{where}: 'prompt' must be a string or a list of messages")


def _as_response(value, name, where):
    """chosen/rejected: a string or a list holding assistant message(s)."""
    if isinstance(value, list):
        if not all(isinstance(m, dict) and m.get("role") == "assistant" and isinstance(m.get("content"), str)
                   for m in value):
            raise DataError(f"{where}: '{name}' as a list must hold assistant messages")
        value = "".join(m["content"] for m in value)
    if not isinstance(value, str):
        raise DataError(f"{where}: '{name}' must be a string or a list of assistant messages")
    if not value.strip():
        raise DataError(f"{where}: empty '{name}' response")
    return value


def split_implicit_prompt(chosen, rejected, where):
    """A pair without 'prompt' whose 'chosen' and 'rejected' are whole conversations (as in Anthropic HH and
    TRL's implicit-prompt format) -> {"prompt", "chosen", "rejected"}: the prompt is the longest run of opening
    messages the two share, and each reply is the rest of its conversation."""
    if not (isinstance(chosen, list) and isinstance(rejected, list)):
        raise DataError(f"{where}: missing 'prompt' (a pair without one needs 'chosen' and 'rejected' as whole "
                        f"conversations, lists of messages that share their opening messages)")
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        raise DataError(f"{where}: no prompt: 'chosen' and 'rejected' share no opening message, so there is no "
                        f"prompt to answer (give a 'prompt' key, or conversations that start alike)")
    if shared == len(chosen) or shared == len(rejected):
        raise DataError(f"{where}: 'chosen' and 'rejected' have no reply after their shared prompt "
                        f"(one conversation is the start of the other)")
    return {"prompt": chosen[:shared], "chosen": chosen[shared:], "rejected": rejected[shared:]}


def chosen_conversation(pair, where):
    """A preference pair -> the messages of its prompt followed by its chosen reply."""
    if "prompt" not in pair:
        pair = {**pair, **split_implicit_prompt(pair["chosen"], pair.get("rejected"), where)}
    prompt = _as_prompt(pair["prompt"], where)
    prompt = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    return prompt + [{"role": "assistant", "content": _as_response(pair["chosen"], "chosen", where)}]


def encode_response(enc, text):
    return encode_text(enc, text) + [enc.encode_single_token(END)]


def encode_pairs(enc, path, block_size, limit=None):
    """prompt/chosen/rejected JSONL (or a JSON array) -> examples with prompt ids and the two response ids;
    with limit, only the first `limit` usable pairs are kept."""
    out = Encoded()
    for line_no, obj in read_jsonl(path):
        where = f"{path}:{line_no}"
        for key in ("chosen", "rejected"):
            if key not in obj:
                raise DataError(f"{where}: missing '{key}'")
        if "prompt" not in obj:  # TRL's implicit prompt: two whole conversations, the prompt is what they share
            obj = {**obj, **split_implicit_prompt(obj["chosen"], obj["rejected"], where)}
        prompt = _as_prompt(obj["prompt"], where)
        chosen = _as_response(obj["chosen"], "chosen", where)
        rejected = _as_response(obj["rejected"], "rejected", where)
        if chosen == rejected:
            out.skip("chosen equals rejected")
            continue
        prompt_ids = render_prompt(enc, prompt)
        chosen_ids, rejected_ids = encode_response(enc, chosen), encode_response(enc, rejected)
        room = block_size - max(len(chosen_ids), len(rejected_ids))
        if room < 2:  # need at least <|bos|> and one prompt token
            out.skip("response longer than the context")
            continue
        if len(prompt_ids) > room:
            prompt_ids = prompt_ids[:1] + prompt_ids[len(prompt_ids) - room + 1:]
            out.truncated += 1
        out.examples.append({"prompt_ids": prompt_ids, "chosen_ids": chosen_ids,
                             "rejected_ids": rejected_ids, "kind": obj.get("kind")})
    if not out.examples:
        raise DataError(f"{path}: no usable pairs")
    out.examples = out.examples[:limit]
    return out


def pair_batch(examples, pad_id):
    """Chosen rows first, then rejected rows, so one forward pass scores both.

    Returns input_ids (2B, T), response_mask (2B, T) and response lengths (2B,).
    """
    rows = [(e["prompt_ids"] + e[k], [0] * len(e["prompt_ids"]) + [1] * len(e[k]))
            for k in ("chosen_ids", "rejected_ids") for e in examples]
    input_ids, mask = pad_and_stack([ids for ids, _ in rows], [m for _, m in rows], pad_id)
    return input_ids, mask, mask.sum(dim=1)


# ----------------------------------------------------------------------------- prompt + answer tasks (RLVR)

def load_tasks(path, enc=None, block_size=None):
    """prompt/answer JSONL -> [{"prompt", "answer"}]. An answer the verifier can never match, and
    (given enc and block_size) a prompt that leaves the model no room to answer, name file:line."""
    tasks = []
    for line_no, obj in read_jsonl(path):
        if not isinstance(obj.get("prompt"), str) or not obj["prompt"].strip():
            raise DataError(f"{path}:{line_no}: 'prompt' must be a non-empty string")
        if "answer" not in obj or not str(obj["answer"]).strip():
            raise DataError(f"{path}:{line_no}: missing 'answer'")
        if not is_readable_answer(obj["answer"]):
            raise DataError(f"{path}:{line_no}: 'answer' must be an integer in digits such as \"42\" or \"-7\" "
                            f"(the verifier reads nothing else, so every reward would be 0), got {obj['answer']!r}")
        n_tokens = len(render_prompt(enc, obj["prompt"])) if enc is not None else 0
        if enc is not None and n_tokens >= block_size:
            raise DataError(f"{path}:{line_no}: the prompt is {n_tokens} tokens with the chat template, which "
                            f"leaves no room for an answer in the model's context of {block_size} tokens")
        tasks.append({"prompt": obj["prompt"], "answer": str(obj["answer"])})
    if not tasks:
        raise DataError(f"{path}: no tasks")
    return tasks


def pad_id(enc):
    return enc.encode_single_token(PAD)


def step_generator(seed, step, rank=0):
    """The random stream of one training step: depends only on (seed, rank, step),
    so an interrupted run resumed from its checkpoint sees exactly the same batches."""
    return torch.Generator().manual_seed(seed * 1_000_003 + rank * 10_007 + step)


def sample_indices(n, batch_size, generator):
    """batch_size example indices drawn uniformly (with replacement across steps)."""
    return torch.randint(n, (batch_size,), generator=generator).tolist()


def batch_indices(n, batch_size, seed, step, rank=0, world_size=1):
    """This rank's batch_size example indices of a step (out of n examples). The step's global batch, batch_size *
    world_size indices, depends only on (seed, step), and rank r takes its r-th contiguous slice of it: N ranks
    of B examples together draw exactly what one process with N * B draws, and a resumed run sees the same
    batches again. One process: sample_indices(n, batch_size, step_generator(seed, step))."""
    step_batch = sample_indices(n, batch_size * world_size, step_generator(seed, step))
    return step_batch[rank * batch_size:(rank + 1) * batch_size]
