"""
The report card: every stage's held-out effect on one page.

Reads runs/<stage>/summary.json written by each stage script and writes
runs/report.md (a table per stage: before -> after, wall time, tokens/s, device,
links to the stage's plots). Each stage calls it at its end for the runs folder
that holds its --out (--out my_runs/sft updates my_runs/report.md); run it yourself with

    python -m gpt_mini.report [--runs runs]
"""

import argparse
import json
import os

from . import layout
from .cli import path_arg
from .evaluate import KNOWS_VS_SAYS, LABELS
from .frontier_experiment import read_result, result_for_lessons, result_markdown
from .plots import plot_curves, plot_token_logratios, save_figure, stage_curves
from .runlog import read_metrics, read_summary, write_summary
from .sweep import SWEEP_RATES, SWEEP_SIDE_EFFECTS, beta_runs, draw_if_several


def _fmt(value, pct=False):
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # nan: nothing to measure (e.g. no known pair in a --quick run)
            return "–"
        return f"{100 * value:.1f} %" if pct else f"{value:.3f}"
    return str(value)


def _row(name, before, after, pct=False):
    return f"| {name} | {_fmt(before, pct)} | {_fmt(after, pct)} |"


def _metric_rows(s):
    """One table row per entry of a summary's "metrics": before and after, as a rate unless its pct is False."""
    return [_row(k, v.get("before"), v.get("after"), pct=v.get("pct", True)) for k, v in s.get("metrics", {}).items()]


def _stage_header(title, s, folder, runs):
    rel = os.path.relpath(folder, runs)
    lines = [f"## {title}", "",
             f"device `{s.get('device')}` · training loop {_seconds(s.get('wall_time_s', 0))} · "
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
            rows = _metric_rows(s)
            out.append((title, os.path.join(runs, stage), s, rows))
    for folder, s in beta_runs(os.path.join(runs, "dpo"))[0]:  # the usable ones; see write_report for the others
        if s:
            rows = _metric_rows(s)
            sweep = "" if s.get("beta") == layout.DEFAULT_BETA else " — β-sweep run, not part of the default pipeline"
            out.append((f"3 · DPO (β = {s.get('beta')}){sweep}", folder, s, rows))
    s = read_summary(os.path.join(runs, "rlvr"))
    if s:
        rows = _metric_rows(s)
        out.append(("4 · RLVR", os.path.join(runs, "rlvr"), s, rows))
    return out


def _seconds(x):
    return f"{x:.0f} s" if x >= 10 else f"{x:.1f} s"


def _time_profile(runs, sections):
    """Where the time of the last `run_all.py` went: whole script vs its training loop, per stage."""
    path = os.path.join(runs, "pipeline.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        pipe = json.load(f)
    loops = {"01_pretrain.py": "1 ·", "02_sft.py": "2 ·", "03_dpo.py": f"3 · DPO (β = {layout.DEFAULT_BETA})",
             "04_rlvr.py": "4 ·"}
    total = pipe["total_wall_time_s"]
    quick = " (--quick)" if pipe.get("quick") else ""
    lines = [f"`{pipe['command']}` took **{total / 60:.1f} min** of wall clock{quick}. Where it went:", "",
             "| stage | whole script | share | training loop | loading, evaluation, saving |",
             "|---|---|---|---|---|"]
    for script, seconds in pipe["stage_wall_time_s"].items():
        loop = next((s.get("wall_time_s") for title, _, s, _ in sections if title.startswith(loops[script])), None)
        loop_text, rest_text = (_seconds(loop), _seconds(seconds - loop)) if loop is not None else ("–", "–")
        lines.append(f"| {script} | {_seconds(seconds)} | {100 * seconds / total:.0f} % | {loop_text} | {rest_text} |")
    return lines + [""]


def _knows_vs_says(runs):
    """Markdown: what each chat model knows next to what it says to a user's opinion (held-out claims)."""
    columns = []
    for title, stage in layout.CHAT_MODELS:
        s = read_summary(layout.model_dir(stage, runs))
        if s and all(k in (s.get("after") or {}) for k in KNOWS_VS_SAYS):
            columns.append((title, s["after"]))
    if not columns:
        return []
    lines = ["## Knows vs says", "",
             "Held-out claims about facts the model knows (it answers the plain question right). A model that "
             "knows a fact yet agrees with a user who states it wrongly is sycophantic; the neutral checks show "
             "that the comparison skill is there.", "",
             "| held-out metric | " + " | ".join(t for t, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for key in KNOWS_VS_SAYS:
        lines.append(f"| {LABELS[key][0].strip()} | " + " | ".join(_fmt(m[key], True) for _, m in columns) + " |")
    return lines + [""]


BAND_KEYS = KNOWS_VS_SAYS + ["facts_sft_entities", "arith_cot"]


def band_rows(folders):
    """Mean and range over several runs folders (seeds) of the headline figures:
    -> [(label, [value per folder], unit)], values None where a folder lacks the figure."""
    rows = []
    pre = [read_summary(os.path.join(f, "pretrain")) or {} for f in folders]
    rows.append(("pretrain: held-out loss (nats/token)", [p.get("held_out_loss") for p in pre], ""))
    for title, stage in layout.CHAT_MODELS:
        after = [(read_summary(layout.model_dir(stage, f)) or {}).get("after") or {} for f in folders]
        for key in BAND_KEYS:
            rows.append((f"{title}: {LABELS[key][0].strip()}", [a.get(key) for a in after], "%"))
    rl = [(read_summary(os.path.join(f, "rlvr")) or {}).get("metrics") or {} for f in folders]
    for label in ("held-out greedy accuracy", "held-out accuracy of one sample (T=1)"):
        rows.append((f"RLVR: {label}", [(m.get(label) or {}).get("after") for m in rl], "%"))
    walls = []
    for f in folders:
        try:
            with open(os.path.join(f, "pipeline.json"), encoding="utf-8") as fh:
                walls.append(json.load(fh).get("total_wall_time_s", 0) / 60)
        except (OSError, ValueError):
            walls.append(None)
    rows.append(("run_all.py wall time (min)", walls, ""))
    return rows


def _band(runs):
    """Markdown: the seeds band, when runs/band.json names the other seeds' runs folders."""
    try:
        with open(os.path.join(runs, "band.json"), encoding="utf-8") as f:
            others = json.load(f)["folders"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    folders = [runs] + [o if os.path.isabs(o) else os.path.join(runs, o) for o in others]
    names = [os.path.basename(os.path.normpath(f)) or f for f in folders]
    lines = ["## The band over seeds", "",
             f"The same pipeline with different seeds ({', '.join(names)}): mean, then the range (min to max). "
             "Another machine's floating-point order gives another run inside a band like this one, "
             "not the same digits.", "",
             "| figure | mean | range | " + " | ".join(names) + " |", "|---" * (len(names) + 3) + "|"]
    for label, values, unit in band_rows(folders):
        got = [v for v in values if isinstance(v, (int, float)) and v == v]
        if not got:
            continue
        scale, fmt = (100, "{:.1f} %") if unit == "%" else (1, "{:.3f}" if "loss" in label else "{:.1f}")
        def cell(v, scale=scale, fmt=fmt):
            return fmt.format(scale * v) if isinstance(v, (int, float)) and v == v else "–"
        lines.append(f"| {label} | {cell(sum(got) / len(got))} | {cell(min(got))} to {cell(max(got))} | "
                     + " | ".join(cell(v) for v in values) + " |")
    return lines + [""]


def write_report(runs="runs"):
    sections = _sections(runs)
    lines = ["# gpt_mini report card", "",
             "Each stage's effect, measured on held-out data it never trained on.", ""]
    total = sum(s.get("wall_time_s", 0) for title, _, s, _ in sections if "sweep" not in title)
    lines.append("Time in the pipeline's training loops (the before/after evaluations excluded): "
                 f"{total / 60:.1f} min.")
    frontier = read_result(runs)  # python -m gpt_mini.frontier: DPO vs RLHF vs Preferred-FT
    lines += [""] + _time_profile(runs, sections) + _knows_vs_says(runs) + _band(runs)
    lines += result_markdown(frontier) if frontier else []
    if sections and plot_summary(runs, sections):
        lines += ["![every stage, before and after](summary.png)", ""]
    skipped = beta_runs(os.path.join(runs, "dpo"))[1]
    if skipped:
        lines += ["DPO folders left out (they are not finished β runs): " + "; ".join(skipped) + ".", ""]
    for title, folder, s, rows in sections:
        lines += _stage_header(title, s, folder, runs) + rows + [""]
        for prompt, reply in (s.get("samples") or {}).items():
            lines.append(f"- `{prompt}` → `{reply.strip()}`")
        lines.append("")
    path = os.path.join(runs, "report.md")
    os.makedirs(runs, exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    write_lesson_data(runs, sections, frontier)
    return path


def plot_summary(runs, sections):
    """runs/summary.png: one panel per stage, before vs after on its held-out metrics."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = []
    for title, _, s, _ in (sec for sec in sections if "sweep" not in sec[0]):
        if "held_out_loss" in s:
            panels.append((title, [("held-out loss", s["held_out_loss_before"], s["held_out_loss"]),
                                   ("unigram", s["unigram_loss"], s["unigram_loss"])], "nats/token"))
        else:
            rates = [(k, v["before"], v["after"]) for k, v in (s.get("metrics") or {}).items() if v.get("pct")]
            panels.append((title, rates, "rate"))
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    for ax, (title, rows, unit) in zip(axes[0], panels):
        ys = range(len(rows))
        ax.barh([y + 0.2 for y in ys], [r[1] for r in rows], height=0.4, label="before", color="#bbb")
        ax.barh([y - 0.2 for y in ys], [r[2] for r in rows], height=0.4, label="after", color="#2a6fb0")
        ax.set_yticks(list(ys))
        ax.set_yticklabels([r[0][:34] for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(unit)
        ax.legend(fontsize=7)
    save_figure(fig, os.path.join(runs, "summary.png"), dpi=100)
    return True


def _before_after(s):
    """{label: "before -> after"} from a summary's metrics, as the lesson pages show them."""
    out = {"device": s.get("device"), "wall time (s)": round(s.get("wall_time_s", 0), 1)}
    for label, v in (s.get("metrics") or {}).items():
        fmt = (lambda x: f"{100 * x:.1f} %") if v.get("pct") else (lambda x: f"{x:.4f}")
        out[label] = f"{fmt(v['before'])} → {fmt(v['after'])}"
    return out


def write_lesson_data(runs, sections, frontier=None):
    """runs/lesson_data.js: the numbers of this run for the lesson pages (a file:// page can load a script,
    not a JSON file), as one global: window.GPT_MINI_RUNS = {pretrain, sft, dpo, rlvr, knows vs says, frontier}."""
    data = {}
    pre = read_summary(os.path.join(runs, "pretrain"))
    if pre:
        data["pretrain"] = {"device": pre["device"], "wall time (s)": round(pre["wall_time_s"], 1),
                            "tokens/s": round(pre["tokens_per_s"]), "parameters": pre["params"],
                            "held-out loss before": pre["held_out_loss_before"],
                            "held-out loss after": pre["held_out_loss"],
                            "unigram baseline": pre["unigram_loss"]}
    for stage in ("sft", "rlvr"):
        s = read_summary(os.path.join(runs, stage))
        if s:
            data[stage] = _before_after(s)
    usable = dict(beta_runs(os.path.join(runs, "dpo"))[0])
    dpo = usable.get(layout.model_dir("dpo", runs))
    if dpo:
        data["dpo"] = _before_after(dpo)
        keep = ("step", "loss", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected",
                "abs_logratio")
        data["dpo"]["log every 100 steps (training stream)"] = [
            {k: r[k] for k in keep if k in r}
            for r in read_metrics(os.path.join(layout.model_dir("dpo", runs), "metrics.jsonl"))
            if r.get("split") == "train"]
    sweep = list(usable.values())
    if len(sweep) > 1:
        data.setdefault("dpo", {})["beta sweep"] = [
            {"beta": s["beta"], "eval accuracy": s["held_out"]["eval/rewards/accuracies"],
             "eval token KL": s["held_out"]["eval/kl"],
             **{LABELS[k][0].strip(): s["after"].get(k) for k, _ in SWEEP_RATES + SWEEP_SIDE_EFFECTS}}
            for s in sweep]
    if dpo and dpo.get("token_logratios"):
        data["dpo"]["token log-ratios"] = dpo["token_logratios"]
    knows = {stage.upper(): {LABELS[k][0].strip(): m[k] for k in KNOWS_VS_SAYS}
             for stage, m in ((stage, (read_summary(layout.model_dir(stage, runs)) or {}).get("after") or {})
                              for _, stage in layout.CHAT_MODELS)
             if all(k in m for k in KNOWS_VS_SAYS)}
    if knows:
        data["knows vs says"] = knows
    if frontier:
        data["frontier"] = result_for_lessons(frontier)
    with open(os.path.join(runs, "lesson_data.js"), "w") as f:
        f.write("// written by gpt_mini.report from runs/*/summary.json; read by lessons/*.html\n")
        f.write("window.GPT_MINI_RUNS = " + json.dumps(data, indent=1, ensure_ascii=False) + ";\n")


def update_quietly(runs="runs"):
    """Called at the end of each stage: a report failure must never lose a finished run."""
    try:
        return write_report(runs)
    except Exception as e:  # noqa: BLE001 - report is a convenience
        print(f"(report not updated: {type(e).__name__}: {e})")


def update_for_stage(out, stage):
    """Called at the end of a stage with its --out: update the report of the runs folder that holds
    it, when --out is <runs>/<stage>, the folder the report reads. Any other --out is left alone (the
    report would not find the run there), so a stage never writes outside its runs folder."""
    out = os.path.normpath(out)
    if os.path.basename(out) != stage:
        print(f"(no report written: --out {out} is not a <runs>/{stage} folder; "
              f"python -m gpt_mini.report --runs DIR writes one for a runs folder)")
        return None
    return update_quietly(os.path.dirname(out) or ".")


def finish_stage(stage, args, device, throughput, numbers, out=None, **curves):
    """The end of every stage script, one call: its curves from metrics.jsonl (plots.stage_curves),
    summary.json (what ran, its timing, then the stage's numbers) and the report of the runs folder.

    out: the folder of this run (default args.out; DPO passes its beta's folder, args.out/beta-<beta>, and
    gets the beta sweep redrawn when args.out holds several). DPO's numbers["token_logratios"] (preference.
    logratio_views) are drawn as token_logratios.png."""
    out = out or args.out
    png, title, panels = stage_curves(stage, **curves)
    plot_curves(read_metrics(os.path.join(out, "metrics.jsonl")), panels, os.path.join(out, png), title=title)
    pngs = [png]
    if numbers.get("token_logratios"):
        pngs.append(os.path.basename(plot_token_logratios(
            numbers["token_logratios"], os.path.join(out, "token_logratios.png"),
            title=f"log π_θ − log π_ref per response token after DPO (β = {curves['beta']:g})")))
    summary = {"stage": stage, "device": device, "steps": args.steps, "wall_time_s": throughput.elapsed,
               "tokens_per_s": throughput.per_second, "quick": args.quick, "args": vars(args)}
    if getattr(args, "init", None) is not None:
        summary["init"] = args.init
    write_summary(out, {**summary, "plots": pngs, **numbers})
    if stage == "dpo":
        draw_if_several(args.out)
    update_for_stage(args.out, stage)


def main():
    parser = argparse.ArgumentParser(prog="python -m gpt_mini.report",
                                     description="Write runs/report.md from the stages' summaries.")
    parser.add_argument("--runs", type=path_arg, default="runs", help="the runs folder to read and write into")
    parser.add_argument("--band", type=path_arg, nargs="+", default=None,
                        help="other runs folders of the same pipeline with other seeds (run_all.py --seed 1 --runs "
                             "runs_seed1 ...): the report adds their mean and range, "
                             "and remembers them in runs/band.json")
    args = parser.parse_args()
    if not os.path.isdir(args.runs):
        parser.error(f"--runs must be an existing runs folder, got {args.runs!r}")
    for folder in args.band or []:
        if not os.path.isfile(os.path.join(folder, "pipeline.json")):
            parser.error(f"--band needs finished run_all.py folders (with pipeline.json), got {folder!r}")
    if args.band is not None:
        with open(os.path.join(args.runs, "band.json"), "w", encoding="utf-8") as f:
            json.dump({"folders": [os.path.abspath(b) for b in args.band]}, f, indent=1)
    print(f"wrote {write_report(args.runs)}")


if __name__ == "__main__":
    main()
