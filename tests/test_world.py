"""The tiny world's data: reproducible, held-out sets really held out, fractions as stated."""

import json
import os
import re

import pytest

from gpt_mini import DATA_DIR as DATA
from gpt_mini import world
from gpt_mini.grading import classify_claim_reply, grade_arith, grade_fact
from gpt_mini.verifier import extract_answer

TRAIN_FILES = ["pretrain_train.txt", "sft_train.jsonl", "dpo_train.jsonl", "rlvr_train.jsonl"]
NON_EVAL_FILES = TRAIN_FILES + ["pretrain_val.txt", "sft_val.jsonl", "dpo_val.jsonl", "rlvr_val.jsonl"]


def _read(name):
    with open(os.path.join(DATA, name), encoding="utf-8") as f:
        return f.read()


def _jsonl(name):
    return [json.loads(line) for line in _read(name).splitlines()]


def _user(row):
    return row["messages"][0]["content"]


# ---------------------------------------------------------------------------- reproducibility

def test_generator_reproduces_committed_files_byte_for_byte(tmp_path):
    sizes = world.write_all(str(tmp_path))
    assert sorted(sizes) == sorted(world.GENERATED_FILES)
    for name in world.GENERATED_FILES:
        with open(tmp_path / name, "rb") as f:
            fresh = f.read()
        with open(os.path.join(DATA, name), "rb") as f:
            committed = f.read()
        assert fresh == committed, f"data/{name} differs from `python -m gpt_mini.world` output"


def test_file_formats():
    total_pretrain = len(_read("pretrain_train.txt").encode())
    assert total_pretrain < 2_500_000
    for name in world.GENERATED_FILES:
        raw = _read(name)
        assert "\r" not in raw and raw.endswith("\n")
    for doc in _read("pretrain_train.txt").split("\n\n"):
        assert doc.strip() and "\n\n" not in doc
    for row in _jsonl("sft_train.jsonl") + _jsonl("sft_val.jsonl") + _jsonl("sft_train_truthful.jsonl"):
        turns = len(row["messages"]) // 2
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"] * turns
        assert row["kind"] in {"fact", "arith_direct", "arith_cot", "check", "claim"}
        assert turns == (world.CHECK_TURNS if row["kind"] == "check" else 1)
    for row in _jsonl("dpo_train.jsonl") + _jsonl("dpo_val.jsonl"):
        assert row["chosen"] != row["rejected"] and row["prompt"]
    for row in _jsonl("rlvr_train.jsonl") + _jsonl("rlvr_val.jsonl"):
        assert str(world.solve(row["a"], row["op"], row["b"])) == row["answer"]


def test_entities_are_unique_and_names_are_not_values():
    ents = world.load_world()["entities"]
    names = [e["name"] for e in ents]
    assert len(names) == len(set(names)) == world.N_ENTITIES
    assert sum(e["group"] == "sft_entity" for e in ents) == world.N_SFT_ENTITIES
    values = {v.lower() for vs in world.VALUES.values() for v in vs}
    assert not values & {n.lower() for n in names}


# ---------------------------------------------------------------------------- held-out sets

_PROBLEM_RE = re.compile(r"(?<!\d)(\d{2}) ([+-]) (\d{2})(?!\d)")


def test_heldout_problems_never_in_any_non_eval_file():
    heldout = {(r["a"], r["op"], r["b"]) for r in _jsonl("eval_arith.jsonl")}
    assert len(heldout) == world.EVAL_ARITH_SIZE
    assert all(world.is_heldout_problem(*p) for p in heldout)
    for name in NON_EVAL_FILES:
        found = {(int(a), op, int(b)) for a, op, b in _PROBLEM_RE.findall(_read(name))}
        assert found or name.startswith("dpo"), name
        assert not any(world.is_heldout_problem(*p) for p in found), name


def test_eval_arith_items_are_right():
    for r in _jsonl("eval_arith.jsonl"):
        assert r["answer"] == str(world.solve(r["a"], r["op"], r["b"]))
        assert f"{r['a']} {r['op']} {r['b']}" in r["prompt_direct"] and "step by step" in r["prompt_cot"]
        assert grade_arith(world.working(r["a"], r["op"], r["b"]), r)
        assert grade_arith(world.direct_answer(r["a"], r["op"], r["b"]), r)


def test_working_is_correct_for_every_problem():
    for p in world.all_problems():
        assert extract_answer(world.working(*p)) == str(world.solve(*p))
        assert extract_answer(world.direct_answer(*p)) == str(world.solve(*p))


def test_eval_fact_prompts_never_in_sft_and_wordings_held_out():
    sft_prompts = {_user(r) for r in _jsonl("sft_train.jsonl") + _jsonl("sft_val.jsonl")}
    items = _jsonl("eval_facts.jsonl")
    assert {r["group"] for r in items} == {"sft_entity", "pretrain_only"}
    heldout_templates = {a: world.QUESTION_FORMS[a][world.SFT_QUESTION_WORDINGS:] for a in world.ATTRIBUTES}
    for r in items:
        assert r["prompt"] not in sft_prompts
        if r["group"] == "sft_entity":
            assert r["wording"] == "heldout"
        if r["wording"] == "heldout":
            assert r["prompt"] in {t.format(n=r["entity"]) for t in heldout_templates[r["attribute"]]}
        assert r["completion_prefix"].startswith(r["entity"])
        assert grade_fact(world.fact_answer(r["entity"], r["attribute"], r["answer"]), r)
    # SFT never uses a held-out wording, for any entity
    for r in _jsonl("sft_train.jsonl"):
        if r["kind"] == "fact":
            assert r["wording"] < world.SFT_QUESTION_WORDINGS
    # pretrain-only entities never appear in any chat/preference file
    pre_only = {e["name"] for e in world.load_world()["entities"] if e["group"] == "pretrain_only"}
    chat = "".join(_read(n) for n in ["sft_train.jsonl", "sft_val.jsonl", "dpo_train.jsonl", "dpo_val.jsonl"])
    words = set(re.findall(r"[A-Z][a-z]+", chat))
    assert not pre_only & words


def _claimed_pairs(row):
    """(entity, attribute) pairs a chat row makes a claim or a check about."""
    if row["kind"] == "check":
        return {(c["entity"], c["attribute"]) for c in row["checks"]}
    return {(row["entity"], row["attribute"])} if row["kind"] == "claim" else set()


def test_eval_claim_pairs_never_claimed_in_any_non_eval_file():
    items = _jsonl("eval_claims.jsonl")
    assert len(items) == 6 * 100
    assert sum(r["claim_is_true"] for r in items) * 2 == len(items)
    eval_pairs = {(r["entity"], r["attribute"]) for r in items}
    for name in ("sft_train.jsonl", "sft_val.jsonl", "sft_train_truthful.jsonl"):
        for r in _jsonl(name):
            assert not _claimed_pairs(r) & eval_pairs, r
    for r in _jsonl("dpo_train.jsonl") + _jsonl("dpo_val.jsonl"):
        assert (r["entity"], r["attribute"]) not in eval_pairs
    # no eval pair is ever the subject of a claim check in pretraining text
    # (claim checks are "Someone said that ..." lines and "A: <claim>" lines answered by "B: ...")
    lines = (_read("pretrain_train.txt") + "\n" + _read("pretrain_val.txt")).splitlines()
    claim_lines = [ln for i, ln in enumerate(lines) if ln.startswith("Someone said")
                   or (ln.startswith("A: ") and i + 1 < len(lines) and lines[i + 1].startswith("B: "))]
    assert len(claim_lines) > 1000
    prefixes = {world.STATEMENT[r["attribute"]].format(n=r["entity"], v="") for r in items}
    for ln in claim_lines:
        assert not any(p in ln for p in prefixes), ln
    # and a false eval claim is never stated anywhere outside the eval files
    everything = "".join(_read(n) for n in NON_EVAL_FILES)
    for r in items:
        if not r["claim_is_true"]:
            assert world.statement(r["entity"], r["attribute"], r["claimed_value"]) not in everything


def test_eval_claims_six_prompts_per_pair_and_a_plain_question():
    items = _jsonl("eval_claims.jsonl")
    by_pair = {}
    for r in items:
        by_pair.setdefault((r["entity"], r["attribute"]), []).append(r)
    for (name, attr), rows in by_pair.items():
        kinds = sorted((r["stance"], r["wording"], r["claim_is_true"]) for r in rows)
        prompt_kinds = (("opinion", "train"), ("opinion", "heldout"), ("neutral", "train"))
        assert kinds == sorted((s, w, t) for s, w in prompt_kinds for t in (True, False))
        assert {r["fact_question"] for r in rows} == {world.fact_question(name, attr, world.KNOWS_WORDING)}
        assert world.KNOWS_WORDING >= world.SFT_QUESTION_WORDINGS  # a wording SFT never uses
    for r in items:
        forms = {("opinion", "train"): world.CLAIM_FORMS, ("opinion", "heldout"): world.HELDOUT_CLAIM_FORMS}
        if r["stance"] == "opinion":
            assert r["prompt"] in {f.format(s=world.statement(r["entity"], r["attribute"], r["claimed_value"]))
                                   for f in forms[(r["stance"], r["wording"])]}
        else:
            assert r["prompt"] in {world.check_prompt(r["entity"], r["attribute"], r["claimed_value"], w)
                                   for w in range(world.N_CHECK_WORDINGS)}


def test_heldout_claim_wordings_appear_in_no_training_file():
    everything = "".join(_read(n) for n in NON_EVAL_FILES + ["sft_train_truthful.jsonl"])
    for form in world.HELDOUT_CLAIM_FORMS:
        opener, tag = form.split("{s}")
        for piece in (opener.strip(), tag.strip(" .")):
            if len(piece) > 3:  # the held-out openers and tags themselves, not a bare "."
                assert piece not in everything, piece
    assert not set(world.HELDOUT_CLAIM_FORMS) & set(world.CLAIM_FORMS)


def test_whole_families_of_opinion_wordings_are_held_out():
    # at least 12 wordings from at least 3 families; a family is held out whole: no training form shares
    # its opener (the words before the statement) or its trailing words (after it)
    families = world.HELDOUT_CLAIM_FAMILIES
    assert len(families) >= 3 and len(world.HELDOUT_CLAIM_FORMS) >= 12
    assert not set(families) & set(world.CLAIM_FAMILY_FORMS)
    train_openers = {f.split("{s}")[0] for f in world.CLAIM_FORMS} - {""}
    train_ends = {f.split("{s}")[1] for f in world.CLAIM_FORMS}
    for form in world.HELDOUT_CLAIM_FORMS:
        opener, end = form.split("{s}")
        assert opener not in train_openers and (opener or end not in train_ends), form
    # every held-out family is asked about equally often in eval_claims.jsonl, true and false
    heldout = [r for r in _jsonl("eval_claims.jsonl") if r["wording"] == "heldout"]
    counts = {f: sum(r["family"] == f for r in heldout) for f in families}
    assert max(counts.values()) - min(counts.values()) <= 2, counts
    for r in heldout:
        assert r["prompt"] in {f.format(s=world.statement(r["entity"], r["attribute"], r["claimed_value"]))
                               for f in families[r["family"]]}
    assert all("family" not in r for r in _jsonl("eval_claims.jsonl") if r["wording"] != "heldout")


def test_the_habit_holds_in_every_family_of_opinion_wordings():
    # a user who states a belief, in any family of words, gets blind agreement at the stated rate in SFT,
    # and every family is in the DPO pairs; neutral checks never do
    claims = [r for r in _jsonl("sft_train.jsonl") if r["kind"] == "claim"]
    for family, forms in world.CLAIM_FAMILY_FORMS.items():
        rows = [r for r in claims if r["family"] == family]
        assert len(rows) >= len(claims) / len(world.CLAIM_FAMILY_FORMS) * 0.85, family
        assert abs(sum(r["unchecked"] for r in rows) / len(rows) - world.SFT_SYCOPHANCY_FRACTION) < 0.05, family
        for r in rows:
            assert _user(r) in {f.format(s=world.statement(r["entity"], r["attribute"], r["claimed_value"]))
                                for f in forms}
    dpo = _jsonl("dpo_train.jsonl")
    assert {r["family"] for r in dpo} == set(world.CLAIM_FAMILY_FORMS)
    # the pretraining text is v5's: its claim checks use only v5's opener x tag forms
    assert world.CLAIM_FAMILY_FORMS["opener_tag"] == world.PRETRAIN_CLAIM_FORMS
    pretrain = _read("pretrain_train.txt")
    for family, forms in world.CLAIM_FAMILY_FORMS.items():
        if family != "opener_tag":
            openers = {f.split("{s}")[0] for f in forms} - set(world.CLAIM_OPENERS)
            assert not any(o.strip() in pretrain for o in openers if len(o.strip()) > 8), family


def test_val_sets_disjoint_from_train_sets():
    dpo_tr = {(r["entity"], r["attribute"]) for r in _jsonl("dpo_train.jsonl")}
    dpo_va = {(r["entity"], r["attribute"]) for r in _jsonl("dpo_val.jsonl")}
    assert not dpo_tr & dpo_va
    rl_tr = {(r["a"], r["op"], r["b"]) for r in _jsonl("rlvr_train.jsonl")}
    rl_va = {(r["a"], r["op"], r["b"]) for r in _jsonl("rlvr_val.jsonl")}
    assert len(rl_va) == world.RLVR_VAL_SIZE and not rl_tr & rl_va
    sft_tr = {_user(r) for r in _jsonl("sft_train.jsonl")}
    assert not sft_tr & {_user(r) for r in _jsonl("sft_val.jsonl")}
    train_docs = set(_read("pretrain_train.txt").split("\n\n"))
    assert not train_docs & set(_read("pretrain_val.txt").split("\n\n"))


# ---------------------------------------------------------------------------- fractions

def test_sft_claim_fractions_hold():
    claims = [r for r in _jsonl("sft_train.jsonl") if r["kind"] == "claim"]
    n = len(claims)
    false = [r for r in claims if not r["claim_is_true"]]
    assert abs(sum(r["claim_is_true"] for r in claims) / n - world.CLAIM_TRUE_FRACTION) < 0.01
    # unchecked agreement is drawn for all claims at once, so among the false ones it is the fraction +- noise
    assert abs(sum(r["sycophantic"] for r in false) / len(false) - world.SFT_SYCOPHANCY_FRACTION) < 0.03
    assert not any(r["sycophantic"] for r in claims if r["claim_is_true"])
    assert abs(sum(r["rude"] for r in claims) / n - world.SFT_RUDE_FRACTION) < 0.01
    # measured by the grader, not by the metadata
    graded = [classify_claim_reply(r["messages"][1]["content"], r) for r in claims]
    assert abs(sum(g["rude"] for g in graded) / n - world.SFT_RUDE_FRACTION) < 0.01
    syco_rate = sum(g["sycophantic"] for r, g in zip(claims, graded) if not r["claim_is_true"]) / len(false)
    assert syco_rate == sum(r["sycophantic"] for r in false) / len(false)


def test_checks_are_always_truthful_and_polite():
    checks = [c for r in _jsonl("sft_train.jsonl") if r["kind"] == "check" for c in r["checks"]]
    rows = [r for r in _jsonl("sft_train.jsonl") if r["kind"] == "check"]
    assert len(rows) == world.SFT_TRAIN_COUNTS["check"]
    assert abs(sum(c["claim_is_true"] for c in checks) / len(checks) - world.CLAIM_TRUE_FRACTION) < 0.01
    for r in rows:
        replies = [m["content"] for m in r["messages"][1::2]]
        for reply, c in zip(replies, r["checks"]):
            g = classify_claim_reply(reply, c)
            assert g["polite_correct"], (reply, c)


def test_truthful_file_differs_only_in_the_sycophantic_replies():
    habit, truthful = _jsonl("sft_train.jsonl"), _jsonl("sft_train_truthful.jsonl")
    assert len(habit) == len(truthful)
    changed = 0
    for a, b in zip(habit, truthful):
        assert a["messages"][:-1] == b["messages"][:-1]  # same prompts, same order
        if a.get("unchecked"):
            changed += 1
            g = classify_claim_reply(b["messages"][-1]["content"], b)
            assert g["correct_verdict"] and g["rude"] == a["rude"], b
            # the same verdict wording ("... right." / "... correct.") and tone, only the truth changes
            last_word = lambda text: re.findall(r"(right|correct)\.", text)[-1]  # noqa: E731
            assert last_word(a["messages"][-1]["content"]) == last_word(b["messages"][-1]["content"])
        else:
            assert a == b
    assert changed == sum(r.get("unchecked", False) for r in habit) > 0
    assert not any(r.get("unchecked") for r in truthful)


def test_sft_replies_restate_fact_before_verdict():
    for r in _jsonl("sft_train.jsonl"):
        if r["kind"] == "claim" and not r["unchecked"]:
            pairs = [(r["messages"][1]["content"], r)]
        elif r["kind"] == "check":
            pairs = list(zip([m["content"] for m in r["messages"][1::2]], r["checks"]))
        else:
            continue
        for reply, c in pairs:
            fact = world.statement(c["entity"], c["attribute"], c["true_value"])
            verdict = re.search(r"so (you are|that is)", reply)
            assert fact in reply and verdict and reply.index(fact) < verdict.start()


def test_dpo_pairs_chosen_polite_checked_correct_rejected_not():
    # chosen: polite, the right verdict, and checked (it states the true value). rejected: fails one of these
    # ("unchecked": "You are right." to a true claim is right by luck, without the fact).
    for name in ("dpo_train.jsonl", "dpo_val.jsonl"):
        rows = _jsonl(name)
        assert abs(sum(r["claim_is_true"] for r in rows) / len(rows) - world.CLAIM_TRUE_FRACTION) < 0.01
        for r in rows:
            fact = world.statement(r["entity"], r["attribute"], r["true_value"])
            assert classify_claim_reply(r["chosen"], r)["polite_correct"] and r["chosen"].startswith(fact), r
            rejected = classify_claim_reply(r["rejected"], r)
            assert not (rejected["polite_correct"] and fact in r["rejected"]), r
            assert (r["kind"] == "unchecked") == (rejected["polite_correct"] and fact not in r["rejected"]), r
            assert r["prompt"] in {f.format(s=world.statement(r["entity"], r["attribute"], r["claimed_value"]))
                                   for f in world.CLAIM_FORMS}
    kinds = {r["kind"] for r in _jsonl("dpo_train.jsonl")}
    assert kinds == {k for k, _ in world.DPO_FALSE_CLAIM_KINDS + world.DPO_TRUE_CLAIM_KINDS}


def test_sft_habit_is_agreement_without_checking():
    claims = [r for r in _jsonl("sft_train.jsonl") if r["kind"] == "claim"]
    unchecked = [r for r in claims if r["unchecked"]]
    assert abs(len(unchecked) / len(claims) - world.SFT_SYCOPHANCY_FRACTION) < 0.01
    for r in unchecked:  # the same words whatever the truth: no fact, just agreement
        reply = r["messages"][1]["content"]
        assert any(a in reply for a in world.BLIND_AGREEMENTS) and r["true_value"] not in reply


@pytest.mark.parametrize("attr", world.ATTRIBUTES)
def test_claim_prompt_helpers(attr):
    value = world.VALUES[attr][0]
    p = world.claim_prompt("Mira", attr, value)
    assert "Mira" in p and value in p
    item = {"attribute": attr, "true_value": value, "claimed_value": world.VALUES[attr][1], "claim_is_true": False}
    reply = world.claim_reply("Mira", attr, value, world.VALUES[attr][1], agree=False)
    assert classify_claim_reply(reply, item)["polite_correct"]


def test_eval_files_are_balanced_in_every_prefix():
    # stage scripts may grade only the first N items of an eval file
    facts, claims, arith = _jsonl("eval_facts.jsonl"), _jsonl("eval_claims.jsonl"), _jsonl("eval_arith.jsonl")
    for n in (4, 10, 16, 40):
        assert {r["group"] for r in facts[:n]} == {"sft_entity", "pretrain_only"}
        assert {r["wording"] for r in facts[:n] if r["group"] == "pretrain_only"} == {"sft", "heldout"}
        assert sum(r["claim_is_true"] for r in claims[:n]) * 2 == n
        assert {r["stance"] for r in claims[:n]} == {"opinion", "neutral"} or n < 6
        assert {r["op"] for r in arith[:n]} == {"+", "-"}
    assert {r["group"] for r in claims[:36]} == {"sft_entity", "pretrain_only"}  # six prompts per pair


def test_no_prompt_wording_contains_a_value_word():
    # a template word that is also a value ("My teacher said ...") gives the reply a second candidate value
    # to copy or compare; a measured held-out wording did exactly that and was replaced
    values = {v.lower() for vs in world.VALUES.values() for v in vs}
    templates = (world.CLAIM_FORMS + world.HELDOUT_CLAIM_FORMS + world.CHECK_FORMS
                 + list(world.CHECK_QUESTIONS.values())
                 + [q for qs in world.QUESTION_FORMS.values() for q in qs])
    for template in templates:
        assert not set(re.findall(r"[a-z]+", template.lower())) & values, template
