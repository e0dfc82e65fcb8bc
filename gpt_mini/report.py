"""
The report card: every stage's held-out effect on one page.

Reads runs/<stage>/summary.json written by each stage script and writes
runs/report.md (a table per stage: before -> after, wall time, tokens/s, device,
links to the stage's plots). Each stage calls it at its end; run it yourself with

    python -m gpt_mini.report [--runs runs]
"""

import argparse
import glob
import os

from .metrics import read_summary


def _fmt(value, pct=False):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{100 * value:.1f} %" if pct else f"{value:.3f}"
    return str(value)


def _row(name, before, after, pct=False):
    return f"| {name} | {_fmt(before, pct)} | {_fmt(after, pct)} |"


def _stage_header(title, s, folder, runs):
    rel = os.path.relpath(folder, runs)
    lines = [f"## {title}", "",
             f"device `{s.get('device')}` · wall time {s.get('wall_time_s', 0):.0f} s · "
             f"{s.get('tokens_per_s', 0):,.0f} tokens/s" + (" · **--quick run**" if s.get("quick") else ""), ""]
    lines += [f"![{p}]({rel}/{p})" for p in s.get("plots", [])]
    return lines + ["", "| held-out metric | before | after |", "|---|---|---|"]


def _sections(runs):
    """(title, folder, rows) for every stage that has a summary."""
    out = []
    s = read_summary(os.path.join(runs, "pretrain"))
    if s:
        rows = [_row("loss (nats/token)", s.get("held_out_loss_before"), s.get("held_out_loss")),
                _row("unigram baseline loss", s.get("unigram_loss"), s.get("unigram_loss"))]
        out.append(("1 · Pretraining", os.path.join(runs, "pretrain"), s, rows))
    for stage, title in (("sft", "2 · SFT"),):
        s = read_summary(os.path.join(runs, stage))
        if s:
            rows = [_row(k, v.get("before"), v.get("after"), pct=v.get("pct", True)) for k, v in s.get("metrics", {}).items()]
            out.append((title, os.path.join(runs, stage), s, rows))
    for folder in sorted(glob.glob(os.path.join(runs, "dpo", "beta-*"))):
        s = read_summary(folder)
        if s:
            rows = [_row(k, v.get("before"), v.get("after"), pct=v.get("pct", True)) for k, v in s.get("metrics", {}).items()]
            out.append((f"3 · DPO (β = {s.get('beta')})", folder, s, rows))
    s = read_summary(os.path.join(runs, "rlvr"))
    if s:
        rows = [_row(k, v.get("before"), v.get("after"), pct=v.get("pct", True)) for k, v in s.get("metrics", {}).items()]
        out.append(("4 · RLVR", os.path.join(runs, "rlvr"), s, rows))
    return out


def write_report(runs="runs"):
    sections = _sections(runs)
    lines = ["# gpt_mini report card", "",
             "Each stage's effect, measured on held-out data it never trained on.", ""]
    total = sum(s.get("wall_time_s", 0) for _, _, s, _ in sections)
    lines.append(f"Total wall time of the stages below: {total / 60:.1f} min.")
    lines.append("")
    for title, folder, s, rows in sections:
        lines += _stage_header(title, s, folder, runs) + rows + [""]
        for prompt, reply in (s.get("samples") or {}).items():
            lines.append(f"- `{prompt}` → `{reply.strip()}`")
        lines.append("")
    path = os.path.join(runs, "report.md")
    os.makedirs(runs, exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def update_quietly(runs="runs"):
    """Called at the end of each stage: a report failure must never lose a finished run."""
    try:
        return write_report(runs)
    except Exception as e:  # noqa: BLE001 - report is a convenience
        print(f"(report not updated: {type(e).__name__}: {e})")


def main():
    parser = argparse.ArgumentParser(description="Write runs/report.md from the stages' summaries.")
    parser.add_argument("--runs", default="runs", help="the runs folder to read and write into")
    args = parser.parse_args()
    print(f"wrote {write_report(args.runs)}")


if __name__ == "__main__":
    main()
