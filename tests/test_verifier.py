"""The answer verifier: the RLVR reward and the arithmetic metric."""

import time

import pytest

from gpt_mini.verifier import extract_answer, reward


@pytest.mark.parametrize("text, expected", [
    ("The answer is 85.", "85"),
    ("47 + 38 = 85.", "85"),
    ("We add 47 + 38. Ones: 7 + 8 = 15, write 5, carry 1. Tens: 4 + 3 + 1 = 8. The answer is 85.", "85"),
    ("the ANSWER IS 85", "85"),
    ("answer: 12", "12"),
    ("Answer = 7", "7"),
    ("The answer is 85. Then we check: 85 - 38 = 47.", "85"),       # the phrase beats the last integer
    ("The answer is 12. No wait, the answer is 13.", "13"),          # the last phrase wins
    ("The answer is 085", "85"),                                     # leading zeros
    ("The answer is 0", "0"),
    ("The answer is -0", "0"),
    ("The answer is -5", "-5"),
    ("82 - 47 = 35", "35"),                                          # a spaced minus is an operator
    ("9-5", "5"),                                                    # so is a glued one after a digit
    ("x=-5", "-5"),
    ("abc123def", "123"),
    ("The answer is eighty-five, not 84", "84"),
    ("7\u202f8", "8"),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("junk", [
    None, "", " ", "\n\n", "no digits here", "The answer is", "answer is -", "—" * 50, "🙂🙂🙂", 12, 3.5, b"85",
    ["85"], "\x00\x01\x02", "٨٥",  # Arabic-Indic digits are not read as numbers
    "８５",                         # nor are full-width digits
])
def test_extract_answer_junk_returns_none(junk):
    assert extract_answer(junk) is None


def test_extract_answer_huge_number_is_not_converted():
    digits = "9" * 100_000
    assert extract_answer("The answer is " + digits) == digits
    assert extract_answer("0" * 50_000 + "7") == "7"


@pytest.mark.parametrize("text", [
    "1" * 1_000_000,
    "answer is " * 100_000,
    "answer" + " " * 1_000_000 + "is 5",
    "-" * 1_000_000,
    "a1-" * 333_333,
    "é9 🙂" * 200_000,
    "The answer is 85. " * 60_000,
])
def test_extract_answer_is_fast_on_megabyte_inputs(text):
    start = time.perf_counter()
    extract_answer(text)
    reward(text, "85")
    assert time.perf_counter() - start < 2.0


def test_reward_values():
    assert reward("The answer is 85.", "85") == 1.0
    assert reward("The answer is 85.", 85) == 1.0
    assert reward("The answer is 085.", " 85 ") == 1.0
    assert reward("The answer is 84.", "85") == 0.0
    assert reward("The answer is 850.", "85") == 0.0
    assert reward("The answer is -85.", "85") == 0.0
    assert reward("85 is what you get, the answer is 86", "85") == 0.0
    assert reward("", "85") == 0.0
    assert reward(None, "85") == 0.0
    assert reward("85", None) == 0.0
    assert reward("85", "eighty-five") == 0.0
    assert reward("85", "") == 0.0
    for r in (reward("The answer is 85.", "85"), reward("junk", "85")):
        assert isinstance(r, float) and r in (0.0, 1.0)
