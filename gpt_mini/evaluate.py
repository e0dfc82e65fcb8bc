"""
Held-out evaluation shared by the stages: greedy replies to prompts the model
never trained on, graded by the programs in grading.py.

    format      replies that answer inside the assistant turn and close it with <|end|>
    facts       exact answers to fact questions, split into entities SFT asked about
                (in wordings it never used) and entities only the pretraining text mentions
    arithmetic  final-answer accuracy when asked to answer directly vs step by step
    claims      on FALSE user claims: agrees (sycophancy) / corrects; on TRUE claims: confirms;
                on all claims: rude replies

Also the held-out assistant loss (mean NLL per response token of data/sft_val.jsonl).
"""

import torch

from . import grading
from .data import data_path, load_jsonl, pad_batch, pad_id
from .logprobs import sequence_logps
from .sampling import chat_replies
from .verifier import reward

# what the report and tables show for each key, and whether it is a rate
LABELS = {
    "assistant_loss": ("held-out assistant loss (nats/token)", False),
    "format": ("format: closes its turn", True),
    "facts_sft_entities": ("facts, SFT entities (new wordings)", True),
    "facts_pretrain_only": ("facts, pretrain-only entities", True),
    "arith_direct": ("arithmetic, direct answer", True),
    "arith_cot": ("arithmetic, step by step", True),
    "claims_false_corrected": ("false claims corrected", True),
    "claims_false_agreed": ("false claims agreed with (sycophancy)", True),
    "claims_true_confirmed": ("true claims confirmed", True),
    "claims_rude": ("rude replies", True),
}


def _limit(items, n):
    return items if n is None else items[:n]


@torch.no_grad()
def assistant_loss(model, enc, examples, batch_size=32):
    """Mean NLL per assistant token over tokenised conversations (dicts with ids, mask)."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    model.eval()
    for i in range(0, len(examples), batch_size):
        input_ids, mask = pad_batch(examples[i:i + batch_size], pad_id(enc))
        input_ids, mask = input_ids.to(device), mask.to(device)
        logps, counts = sequence_logps(model(input_ids), input_ids, mask, return_counts=True)
        total -= logps.sum().item()
        count += counts.sum().item()
    return total / max(count, 1)


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
    """Sycophancy and tone on held-out claims (used by SFT and DPO)."""
    replies, finished = chat_replies(model, enc, [c["prompt"] for c in claims], max_new_tokens, return_finished=True)
    if finished_sink is not None:
        finished_sink += finished
    verdicts = [grading.classify_claim_reply(r, c) for r, c in zip(replies, claims)]
    false = [v for v, c in zip(verdicts, claims) if not c["claim_is_true"]]
    true = [v for v, c in zip(verdicts, claims) if c["claim_is_true"]]
    if shown is not None:
        for kind, pick in (("claim_false", False), ("claim_true", True)):
            i = next((j for j, c in enumerate(claims) if c["claim_is_true"] == pick), None)
            if i is not None:
                shown[kind] = (claims[i]["prompt"], replies[i])
    return {
        "claims_false_corrected": sum(v["corrects"] for v in false) / max(len(false), 1),
        "claims_false_agreed": sum(v["agrees"] for v in false) / max(len(false), 1),
        "claims_true_confirmed": sum(v["confirms"] for v in true) / max(len(true), 1),
        "claims_rude": sum(v["rude"] for v in verdicts) / max(len(verdicts), 1),
    }


def before_after_table(before, after, title_before="before", title_after="after"):
    """A plain-text table of the metrics both dicts share."""
    lines = [f"{'held-out metric':42s} {title_before:>12s} {title_after:>12s}"]
    for key, (label, is_rate) in LABELS.items():
        if key in before and key in after:
            fmt = (lambda v: f"{100 * v:10.1f} %") if is_rate else (lambda v: f"{v:12.3f}")
            lines.append(f"{label:42s} {fmt(before[key])} {fmt(after[key])}")
    return "\n".join(lines)


def summary_metrics(before, after):
    """{label: {before, after, pct}} for summary.json / the report."""
    return {LABELS[k][0]: {"before": before[k], "after": after[k], "pct": LABELS[k][1]}
            for k in LABELS if k in before and k in after}


def task_accuracy(model, enc, tasks, k=8, max_new_tokens=64, seed=0):
    """RLVR evaluation with the same verifier as the reward.

    greedy:  fraction of tasks whose greedy reply is right
    pass@k:  fraction of tasks where at least one of k samples at temperature 1 is right
             (with exactly k samples the unbiased estimator of Chen et al. 2021 reduces to this)
    """
    prompts = [t["prompt"] for t in tasks]
    greedy = chat_replies(model, enc, prompts, max_new_tokens)
    greedy_acc = sum(reward(r, t["answer"]) for r, t in zip(greedy, tasks)) / len(tasks)
    out = {"greedy_accuracy": greedy_acc}
    if k:
        g = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
        sampled = chat_replies(model, enc, [p for p in prompts for _ in range(k)], max_new_tokens,
                               temperature=1.0, generator=g)
        hits = [reward(r, tasks[i // k]["answer"]) for i, r in enumerate(sampled)]
        out[f"pass@{k}"] = sum(max(hits[i * k:(i + 1) * k]) for i in range(len(tasks))) / len(tasks)
        out["sample_accuracy"] = sum(hits) / len(hits)
    return out, greedy[0]
