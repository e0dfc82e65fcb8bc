"""
The arithmetic verifier: one function is both the RLVR reward and the evaluation metric.

Rules of `extract_answer(text)`:
  1. If the text contains "answer is N", "answer: N" or "answer = N" (any case), the N of
     the LAST such phrase is the answer.
  2. Otherwise the last integer in the text is the answer ("47 + 38 = 85." -> "85").
  3. Otherwise (no digits at all, empty, not a string) the answer is None.
Integers are ASCII digit runs with an optional minus sign glued to the front ("-5"); a
minus after a digit or letter is an operator ("9-5" -> 9 and 5). Only ASCII digits count:
other scripts' digits are not read as numbers. The result is normalised: no leading
zeros ("085" -> "85"), "-0" -> "0". Numbers are compared as strings, never converted to
int, so a 10,000-digit number costs nothing special. The patterns have no nested
repetition, so the time is linear in the text length (1 MB in a few milliseconds).
"""

import re

_ANSWER_RE = re.compile(r"answer(?: is|:| =|=)[ \t]{0,8}(-?[0-9]+)", re.IGNORECASE)
_INT_RE = re.compile(r"(?<![0-9A-Za-z])-?[0-9]+|[0-9]+")


def _normalise(num):
    neg = num.startswith("-")
    digits = num.lstrip("-").lstrip("0") or "0"
    return "-" + digits if neg and digits != "0" else digits


def extract_answer(text):
    """The final integer answer in free text as a normalised string, or None (never raises)."""
    if not isinstance(text, str) or not text:
        return None
    last = None
    for m in _ANSWER_RE.finditer(text):
        last = m.group(1)
    if last is None:
        for m in _INT_RE.finditer(text):
            last = m.group(0)
    return None if last is None else _normalise(last)


def is_readable_answer(answer):
    """Can extract_answer ever give this expected answer? Only an integer written in ASCII digits
    ("42", "-7", " 085 ", 42) can be matched; reward() gives 0.0 to every reply for anything else
    ("four", "4.0", "1,000")."""
    return not isinstance(answer, bool) and re.fullmatch(r"-?[0-9]+", str(answer).strip()) is not None


def reward(text, answer):
    """1.0 when extract_answer(text) equals the expected answer (normalised), else 0.0."""
    try:
        got = extract_answer(text)
        if got is None:
            return 0.0
        want = str(answer).strip()
        if not re.fullmatch(r"-?[0-9]+", want):
            return 0.0
        return 1.0 if got == _normalise(want) else 0.0
    except Exception:  # a reward must never crash a training run
        return 0.0
