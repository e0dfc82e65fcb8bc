"""evaluate.claim_rates: "knows vs says" on scripted replies (no model), so each rate's
definition is pinned: known pairs only, training wordings apart from held-out ones."""
import math

from gpt_mini import evaluate, world
from gpt_mini.data import data_path, load_jsonl


def scripted(claims, known, sycophant_on=("train", "heldout")):
    """A fake chat_replies: answers the plain question right for the pairs in `known` (else a wrong
    value), agrees blindly with every opinion claim in the given wordings, and checks all else."""
    by_question = {c["fact_question"]: c for c in claims}
    by_prompt = {c["prompt"]: c for c in claims}

    def replies(model, enc, prompts, max_new_tokens=64, return_finished=False):
        out = []
        for p in prompts:
            if p in by_question:
                c = by_question[p]
                value = c["true_value"] if (c["entity"], c["attribute"]) in known else \
                    next(v for v in world.VALUES[c["attribute"]] if v != c["true_value"])
                out.append(world.fact_answer(c["entity"], c["attribute"], value))
            else:
                c = by_prompt[p]
                if c["stance"] == "opinion" and c["wording"] in sycophant_on:
                    out.append("You are right.")
                else:
                    out.append(world.claim_reply(c["entity"], c["attribute"], c["true_value"], c["claimed_value"],
                                                 agree=c["claim_is_true"]))
        return (out, [True] * len(out)) if return_finished else out
    return replies


def test_claim_rates_count_known_pairs_only_and_keep_held_out_wordings_apart(monkeypatch):
    claims = load_jsonl(data_path("eval_claims.jsonl"))
    pairs = sorted({(c["entity"], c["attribute"]) for c in claims})
    known = set(pairs[::2])  # the model "knows" every other pair
    monkeypatch.setattr(evaluate, "chat_replies", scripted(claims, known, sycophant_on=("train",)))
    rates = evaluate.claim_rates(None, None, claims)
    sft_pairs = {(c["entity"], c["attribute"]) for c in claims if c["group"] == "sft_entity"}
    assert math.isclose(rates["knows"], len(known & sft_pairs) / len(sft_pairs))
    # blind agreement in the training wordings: every known false claim agreed with, none corrected
    assert rates["claims_false_agreed"] == 1.0 and rates["claims_false_corrected"] == 0.0
    assert rates["claims_true_confirmed"] == 1.0
    # the held-out wordings were answered by checking: all right, and counted apart
    assert rates["heldout_false_agreed"] == 0.0 and rates["heldout_false_corrected"] == 1.0
    assert rates["heldout_true_confirmed"] == 1.0
    assert rates["checks_right"] == 1.0 and rates["claims_rude"] == 0.0


def test_a_pair_the_model_does_not_know_is_left_out(monkeypatch):
    # Wrong answers everywhere on the unknown pairs cannot move the rates of the known ones.
    claims = load_jsonl(data_path("eval_claims.jsonl"))
    pairs = sorted({(c["entity"], c["attribute"]) for c in claims})
    known = set(pairs[:10])
    monkeypatch.setattr(evaluate, "chat_replies", scripted(claims, known, sycophant_on=()))
    rates = evaluate.claim_rates(None, None, claims)
    assert rates["claims_false_corrected"] == 1.0 and rates["claims_false_agreed"] == 0.0
    monkeypatch.setattr(evaluate, "chat_replies", scripted(claims, set(), sycophant_on=()))
    rates = evaluate.claim_rates(None, None, claims)
    assert rates["knows"] == 0.0 and math.isnan(rates["claims_false_agreed"])


def test_held_out_agreement_is_also_reported_per_family(monkeypatch):
    # blind agreement only in one held-out family: that family's rate is 1, the others 0, and the overall
    # held-out rate is that family's share of the known false held-out claims
    claims = load_jsonl(data_path("eval_claims.jsonl"))
    known = {(c["entity"], c["attribute"]) for c in claims}
    family = list(world.HELDOUT_CLAIM_FAMILIES)[1]
    only_there = [dict(c, wording="heldout-" + family) if c.get("family") == family else c for c in claims]
    fake = scripted(only_there, known, sycophant_on=("heldout-" + family,))
    monkeypatch.setattr(evaluate, "chat_replies", lambda model, enc, prompts, *a, **k: fake(model, enc, prompts, **k))
    rates = evaluate.claim_rates(None, None, claims)
    for other in world.HELDOUT_CLAIM_FAMILIES:
        assert rates[f"heldout_{other}_false_agreed"] == (1.0 if other == family else 0.0), other
    false_heldout = [c for c in claims if c["wording"] == "heldout" and not c["claim_is_true"]]
    share = sum(c["family"] == family for c in false_heldout) / len(false_heldout)
    assert math.isclose(rates["heldout_false_agreed"], share)
    assert len(world.HELDOUT_CLAIM_FAMILIES) >= 3 and all(f"heldout_{f}_false_agreed" in evaluate.KNOWS_VS_SAYS
                                                           for f in world.HELDOUT_CLAIM_FAMILIES)
