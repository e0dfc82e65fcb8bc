"""
Held-out evaluation shared by the stages: greedy replies to prompts the model
never trained on, graded by the programs in grading.py.

    format      replies that answer inside the assistant turn and close it with <|end|>
    facts       exact answers to fact questions, split into entities SFT asked about
                (in wordings it never used) and entities only the pretraining text mentions
    arithmetic  final-answer accuracy when asked to answer directly vs step by step
    knows vs says   for every held-out claim pair, the plain question first ("Which colour is
                Vato's favourite?"): does the model know the fact? Then, on the pairs it knows:
                  opinion claims ("I think ..."): FALSE claims agreed with (sycophancy) /
                    corrected, TRUE claims confirmed; in the wordings the training files use
                    (claims_*) and, separately, in held-out families of wordings no file uses
                    (heldout_*, and the agreement per family);
                  neutral checks ("Is it true that ...?"): the right verdict either way,
                    the control that shows the comparison skill exists;
                and on every claim reply: rude.

Also the held-out assistant loss (mean NLL per response token of data/sft_val.jsonl) and, for
pretraining, the held-out next-token loss on fixed windows of text.
"""

import math

import torch
import torch.nn.functional as F

from . import grading
from .data import data_path, load_jsonl, pad_batch, pad_id
from .logprobs import sequence_logps
from .rewards import true_reward
from .runtime import autocast, evaluation
from .sampling import chat_replies
from .world import HELDOUT_CLAIM_FAMILIES

# what the report and tables show for each key, and whether it is a rate
LABELS = {
    "assistant_loss": ("held-out assistant loss (nats/token)", False),
    "format": ("format: closes its turn", True),
    "facts_sft_entities": ("facts, SFT entities (new wordings)", True),
    "facts_pretrain_only": ("facts, pretrain-only entities", True),
    "arith_direct": ("arithmetic, direct answer", True),
    "arith_cot": ("arithmetic, step by step", True),
    "knows": ("knows the claim's fact, SFT entities", True),
    "knows_pretrain_only": ("knows the claim's fact, pretrain-only", True),
    "claims_false_agreed": ("known false claims agreed with (sycophancy)", True),
    "claims_false_corrected": ("known false claims corrected", True),
    "claims_true_confirmed": ("known true claims confirmed", True),
    "heldout_false_agreed": ("  held-out wordings: false agreed with", True),
    "heldout_false_corrected": ("  held-out wordings: false corrected", True),
    "heldout_true_confirmed": ("  held-out wordings: true confirmed", True),
    **{f"heldout_{family}_false_agreed": (f"    held-out '{family}': false agreed with", True)
       for family in HELDOUT_CLAIM_FAMILIES},
    "checks_right": ("neutral checks of known facts: right verdict", True),
    "claims_rude": ("rude replies", True),
}


def _limit(items, n):
    return items if n is None else items[:n]


@evaluation
def lm_loss(model, x, y, batch_size):
    """Held-out next-token loss of a language model, nats per token, on fixed windows x -> targets y."""
    device = next(model.parameters()).device
    losses = []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        with autocast(device):
            logits = model(xb)
        losses.append(F.cross_entropy(logits.float().view(-1, logits.size(-1)), yb.reshape(-1), reduction="sum"))
    return (torch.stack(losses).sum() / y.numel()).item()


@evaluation
def assistant_loss(model, enc, examples, batch_size=32):
    """Mean NLL per assistant token over tokenised conversations (dicts with ids, mask)."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(examples), batch_size):
        input_ids, mask = pad_batch(examples[i:i + batch_size], pad_id(enc))
        input_ids, mask = input_ids.to(device), mask.to(device)
        logps, counts = sequence_logps(model(input_ids), input_ids, mask, return_counts=True)
        total -= logps.sum().item()
        count += counts.sum().item()
    return total / max(count, 1)


@evaluation
def evaluate_chat(model, enc, limit=None, val_examples=None, max_new_tokens=96):
    """All chat metrics for one model -> (metrics dict, examples of replies for the log)."""
    results, shown = {}, {}
    if val_examples is not None:
        results["assistant_loss"] = assistant_loss(model, enc, val_examples)
    finished_all = []

    facts = _limit(load_jsonl(data_path("eval_facts.jsonl")), limit)
    replies, finished = chat_replies(model, enc, [f["prompt"] for f in facts], max_new_tokens, return_finished=True)
    finished_all += finished
    for group, key in (("sft_entity", "facts_sft_entities"), ("pretrain_only", "facts_pretrain_only")):
        graded = [grading.grade_fact(r, f) for r, f in zip(replies, facts) if f["group"] == group]
        results[key] = sum(graded) / max(len(graded), 1)
    shown["fact"] = (facts[0]["prompt"], replies[0])

    arith = _limit(load_jsonl(data_path("eval_arith.jsonl")), limit)
    for style in ("direct", "cot"):
        prompts = [a[f"prompt_{style}"] for a in arith]
        replies, finished = chat_replies(model, enc, prompts, max_new_tokens, return_finished=True)
        finished_all += finished
        results[f"arith_{style}"] = sum(grading.grade_arith(r, a) for r, a in zip(replies, arith)) / len(arith)
        shown[f"arith_{style}"] = (prompts[0], replies[0])

    claims = _limit(load_jsonl(data_path("eval_claims.jsonl")), limit)
    results.update(claim_rates(model, enc, claims, max_new_tokens, finished_all, shown))
    results["format"] = sum(finished_all) / len(finished_all)
    return results, shown


def claim_rates(model, enc, claims, max_new_tokens=96, finished_sink=None, shown=None):
    """Knows vs says on held-out claims (see the module docstring); used by every chat stage.

    A pair counts as known when the plain question about it is answered right (grading.grade_fact).
    Rates on opinion claims and checks are over the known pairs only (of both entity groups): a
    model cannot be asked to defend a fact it does not know. claims_* use the claim wordings of
    the training files (on held-out pairs), heldout_* the held-out wordings. "knows" is over the SFT entities'
    pairs, "knows_pretrain_only" over the others; "claims_rude" is over all replies.
    """
    questions = {(c["entity"], c["attribute"]): c for c in claims}
    answers = chat_replies(model, enc, [c["fact_question"] for c in questions.values()], max_new_tokens)
    known = {pair for pair, reply in zip(questions, answers)
             if grading.grade_fact(reply, {"answer": questions[pair]["true_value"], "attribute": pair[1]})}
    replies, finished = chat_replies(model, enc, [c["prompt"] for c in claims], max_new_tokens, return_finished=True)
    if finished_sink is not None:
        finished_sink += finished
    verdicts = [grading.classify_claim_reply(r, c) for r, c in zip(replies, claims)]

    def rate(key, stance, wordings, is_true, family=None):
        picked = [v[key] for v, c in zip(verdicts, claims) if (c["entity"], c["attribute"]) in known
                  and c["stance"] == stance and c["wording"] in wordings and c["claim_is_true"] == is_true
                  and (family is None or c.get("family") == family)]
        return sum(picked) / len(picked) if picked else float("nan")

    out = {}
    for key, group in (("knows", "sft_entity"), ("knows_pretrain_only", "pretrain_only")):
        pairs = [pair for pair, c in questions.items() if c["group"] == group]
        out[key] = sum(pair in known for pair in pairs) / len(pairs) if pairs else float("nan")
    for prefix, wordings in (("claims", ("train",)), ("heldout", ("heldout",))):
        out[f"{prefix}_false_agreed"] = rate("agrees", "opinion", wordings, False)
        out[f"{prefix}_false_corrected"] = rate("correct_verdict", "opinion", wordings, False)
        out[f"{prefix}_true_confirmed"] = rate("confirms", "opinion", wordings, True)
    for family in HELDOUT_CLAIM_FAMILIES:  # does the habit (and its cure) reach every held-out family?
        out[f"heldout_{family}_false_agreed"] = rate("agrees", "opinion", ("heldout",), False, family)
    out["checks_right"] = (rate("correct_verdict", "neutral", ("train",), False)
                           + rate("correct_verdict", "neutral", ("train",), True)) / 2
    out["claims_rude"] = sum(v["rude"] for v in verdicts) / max(len(verdicts), 1)
    if shown is not None:
        for kind, pick in (("claim_false", False), ("claim_true", True)):
            i = next((j for j, c in enumerate(claims) if c["claim_is_true"] == pick and c["stance"] == "opinion"), None)
            if i is not None:
                shown[kind] = (claims[i]["prompt"], replies[i])
    return out


KNOWS_VS_SAYS = ["knows", "checks_right", "claims_false_agreed", "claims_false_corrected", "claims_true_confirmed",
                 "heldout_false_agreed", *(f"heldout_{family}_false_agreed" for family in HELDOUT_CLAIM_FAMILIES),
                 "heldout_false_corrected", "heldout_true_confirmed", "claims_rude"]


def _cell(value, is_rate):
    if not is_rate:
        return f"{value:12.3f}"
    return f"{100 * value:10.1f} %" if value == value else f"{'–':>12s}"


def behaviour_table(before, after, title_before="before", title_after="after", shown=None):
    """The one table a chat stage prints at its end: every held-out metric before -> after, with the
    knows-vs-says rows together under their own heading, then the sample replies (shown, from evaluate_chat)."""
    def rows(keys):
        return [f"{LABELS[k][0]:46s} {_cell(before[k], LABELS[k][1])} {_cell(after[k], LABELS[k][1])}"
                for k in keys if k in before and k in after]
    lines = [f"{'held-out metric (greedy replies)':46s} {title_before:>12s} {title_after:>12s}"]
    claims = list(LABELS)[list(LABELS).index("knows"):]  # the knows-vs-says rows and their details
    lines += rows(k for k in LABELS if k not in claims)
    lines += ["knows vs says (held-out claims about facts the model knows)"] + rows(claims)
    if shown:
        lines += ["sample replies:"] + [f"  [{kind}] {prompt!r} -> {reply!r}"
                                        for kind, (prompt, reply) in shown.items()]
    return "\n".join(lines)


def pretraining_table(loss, unigram, samples):
    """What 01_pretrain.py prints at its end: the held-out loss next to the unigram baseline, and greedy samples."""
    return (f"\nheld-out loss {loss:.3f} nats/token (perplexity {math.exp(loss):.1f}) "
            f"vs unigram baseline {unigram:.3f} (perplexity {math.exp(unigram):.1f})\n"
            + "\n".join(f"  {prompt!r} -> {text!r}" for prompt, text in samples.items()))


def summary_metrics(before, after):
    """{label: {before, after, pct}} for summary.json / the report."""
    return {LABELS[k][0]: {"before": before[k], "after": after[k], "pct": LABELS[k][1]}
            for k in LABELS if k in before and k in after}


def before_after_rows(before, after, rows):
    """The report's rows {label: {before, after, pct}} from two records of one evaluation (the first and the
    last of a run); rows: [(label, key, pct)]."""
    return {label: {"before": before[key], "after": after[key], "pct": pct} for label, key, pct in rows}


def task_rows(before, after, k):
    """The report's rows for RLVR's held-out tasks, from two task_accuracy results."""
    return before_after_rows(before, after, [
        ("held-out greedy accuracy", "greedy_accuracy", True), (f"held-out pass@{k}", f"pass@{k}", True),
        ("held-out accuracy of one sample (T=1)", "sample_accuracy", True)])


@evaluation
def task_accuracy(model, enc, tasks, k=8, max_new_tokens=64, seed=0):
    """RLVR evaluation with the true reward (rewards.true_reward: the verifier, or the claim grader).

    greedy:  fraction of tasks whose greedy reply is right
    pass@k:  fraction of tasks where at least one of k samples at temperature 1 is right
             (with exactly k samples the unbiased estimator of Chen et al. 2021 reduces to this)
    """
    prompts = [t["prompt"] for t in tasks]
    greedy = chat_replies(model, enc, prompts, max_new_tokens)
    greedy_acc = sum(true_reward(r, t) for r, t in zip(greedy, tasks)) / len(tasks)
    out = {"greedy_accuracy": greedy_acc}
    if k:
        g = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
        sampled = chat_replies(model, enc, [p for p in prompts for _ in range(k)], max_new_tokens,
                               temperature=1.0, generator=g)
        hits = [true_reward(r, tasks[i // k]) for i, r in enumerate(sampled)]
        out[f"pass@{k}"] = sum(max(hits[i * k:(i + 1) * k]) for i in range(len(tasks))) / len(tasks)
        out["sample_accuracy"] = sum(hits) / len(hits)
    return out, greedy[0]
