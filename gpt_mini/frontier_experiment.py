"""
The DPO paper's central experiment (Rafailov et al. 2023, Fig. 2) on a laptop: every way of using the
preference data, at several strengths, on one reward-KL frontier. `python -m gpt_mini.frontier` runs it.

From the pipeline's SFT checkpoint (runs/sft), each method trains with --frontier, so that every
evaluation, step 0 included, measures one point (gpt_mini/frontier.py: the sequence KL to the SFT
model, and the claim grader's true reward in training and in held-out wordings):

    DPO           03_dpo.py at four betas                      the reference's log-probs, no reward model
    SimPO, ORPO   03_dpo.py --loss simpo | orpo                 no reference at all (lesson 5's variants)
    Preferred-FT  02_sft.py on the chosen replies               "just SFT on the good answers"
    RLHF          train_reward_model.py, then 04_rlvr.py --reward model at three KL coefficients
    PPO-GT        04_rlvr.py --reward grader at two KL coefficients   RL on the true reward: the best RL can do

Then it writes runs/frontier/: frontier.json (every point and every run's cost), frontier.png, and the
report's frontier section (runs/report.md). Runs go side by side, one thread each on a CPU (--jobs).
What it simplifies: one seed per command (--seed; the README's band runs it three times); RL is the
GRPO-style loop of 04_rlvr.py (no value model), not PPO proper.
"""

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field

from . import layout
from .plots import plt, save_figure
from .runlog import read_metrics, read_summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Every method, its colour, and the models it holds in memory while it trains (the learner's cost question:
# "PPO needs four models live at once"; this loop has no value model, so RLHF needs three).
METHODS = {
    "DPO": ("#2a6fb0", "2: policy, reference (its log-probs cached before the loop)"),
    "SimPO": ("#6a3d9a", "1: policy (reference-free)"),
    "ORPO": ("#b15928", "1: policy (reference-free)"),
    "Preferred-FT": ("#33a02c", "1: policy"),
    "RLHF": ("#e31a1c", "3: policy, reference, reward model"),
    "PPO-GT": ("#ff7f00", "2: policy, reference (the reward is a program)"),
}
FULL = {"DPO": [0.01, 0.1, 0.5, 1.0], "SimPO": [2.0, 10.0], "ORPO": [0.1, 1.0], "Preferred-FT": [5e-6, 2e-5],
        "RLHF": [0.0, 0.02, 0.1], "PPO-GT": [0.02, 0.1]}
QUICK = {"DPO": [0.1, 1.0], "SimPO": [2.0], "ORPO": [0.1], "Preferred-FT": [5e-6], "RLHF": [0.02], "PPO-GT": [0.02]}
WEAK_RLHF = "weak reward model, KL coef. 0, 90 steps"
COLLAPSE_DROP = 0.1  # a finished run whose last true reward is this far below the SFT model's has collapsed


@dataclass
class Run:
    """One training run of the experiment: a script, its flags and the folder its metrics.jsonl lands in."""
    method: str
    setting: str
    script: str
    out: str
    flags: list
    needs: str = None      # a run (by folder) that must finish first: RLHF needs its reward model
    status: str = "waiting"
    wall_s: float = 0.0
    points: list = field(default_factory=list)


def plan(runs, out, quick=False, seed=0, device="auto"):
    """The runs, reward model first. Each preference method gets DPO's budget (400 steps x 16 pairs, a point
    every 100 steps); each RL run 30 steps of 16 prompts x 8 samples (a point every 10)."""
    common = ["--init", layout.stage_dir("sft", runs), "--seed", str(seed), "--device", device, "--no-progress"]
    common += ["--quick"] if quick else []
    stage = common + ["--frontier"] + ([] if quick else ["--eval-limit", "100"])  # the stages' own evals: smaller
    settings = QUICK if quick else FULL
    # one folder per method, named as the method (runs/frontier/DPO/beta-0.1, runs/frontier/RLHF/kl-0.02): not a
    # stage's name, so the stage scripts do not write a report card of their own into runs/frontier
    reward_model = os.path.join(out, "reward-model")
    todo = [Run("reward model", "Bradley-Terry", "train_reward_model.py", reward_model,
                common + ["--out", reward_model])]
    if not quick:  # the control for reward hacking: a weak reward model (30 steps), no KL penalty, 3x the RL steps
        weak = os.path.join(out, "reward-model-weak")
        todo += [Run("reward model", "weak: 30 steps", "train_reward_model.py", weak,
                     common + ["--steps", "30", "--eval-every", "10", "--out", weak]),
                 Run("RLHF", WEAK_RLHF, "04_rlvr.py", os.path.join(out, "RLHF", "weak-rm-kl-0"),
                     stage + ["--reward", "model", "--reward-model", weak, "--kl", "0", "--steps", "90",
                              "--eval-every", "10", "--out", os.path.join(out, "RLHF", "weak-rm-kl-0")], needs=weak)]
    for method, loss in (("DPO", "sigmoid"), ("SimPO", "simpo"), ("ORPO", "orpo")):
        folder = os.path.join(out, method)
        todo += [Run(method, f"β {beta:g}", "03_dpo.py", layout.beta_dir(folder, beta),
                     stage + ["--loss", loss, "--beta", f"{beta:g}", "--out", folder]) for beta in settings[method]]
    todo += [Run("Preferred-FT", f"lr {lr:g}", "02_sft.py", os.path.join(out, "Preferred-FT", f"lr-{lr:g}"),
                 stage + ["--data", os.path.join(ROOT, "data", "dpo_train.jsonl"), "--lr", f"{lr:g}",
                          "--out", os.path.join(out, "Preferred-FT", f"lr-{lr:g}")]
                 + ([] if quick else ["--steps", "400", "--batch-size", "16", "--warmup", "20", "--eval-every", "100"]))
             for lr in settings["Preferred-FT"]]
    for method, reward in (("RLHF", "model"), ("PPO-GT", "grader")):
        for kl in settings[method]:
            folder = os.path.join(out, method, f"kl-{kl:g}")
            todo.append(Run(method, f"KL coef. {kl:g}", "04_rlvr.py", folder,
                            stage + ["--reward", reward, "--kl", f"{kl:g}", "--out", folder]
                            + (["--reward-model", reward_model] if reward == "model" else [])
                            + ([] if quick else ["--eval-every", "10"]),
                            needs=reward_model if reward == "model" else None))
    return todo


def _why_failed(log_path):
    """'diverged' when the run stopped on a NaN/inf loss (optim.check_finite), else 'failed'."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            tail = f.read()[-2000:]
    except OSError:
        return "failed"
    return "diverged" if "the loss became" in tail else "failed"


def run_all(todo, log_dir, jobs=1, threads=1):
    """Run the runs, `jobs` at a time (each with `threads` CPU threads); a run whose `needs` failed is skipped.
    Sets each run's status ("finished", "diverged", "failed", "skipped") and wall_s; prints one line per event."""
    os.makedirs(log_dir, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    waiting, running, start = list(todo), {}, time.time()
    by_out = {r.out: r for r in todo}
    while waiting or running:
        for run in list(waiting):
            need = by_out.get(run.needs)
            if need is not None and need.status in ("diverged", "failed", "skipped"):
                run.status = "skipped"
                waiting.remove(run)
                print(f"  skipped {run.method} {run.setting}: {need.method} {need.status}", flush=True)
            elif len(running) < jobs and (need is None or need.status == "finished"):
                waiting.remove(run)
                log = _log_path(run, log_dir)
                with open(log, "w") as f:
                    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, run.script)] + run.flags,
                                            stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
                running[proc] = (run, log, time.time())
                print(f"[{(time.time() - start) / 60:4.1f} min] start  {run.method} {run.setting}", flush=True)
        for proc, (run, log, began) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[proc]
            run.wall_s = time.time() - began
            run.status = "finished" if proc.returncode == 0 else _why_failed(log)
            print(f"[{(time.time() - start) / 60:4.1f} min] {run.status:8s} {run.method} {run.setting} "
                  f"({run.wall_s:.0f} s{'' if run.status == 'finished' else '; see ' + log})", flush=True)
        time.sleep(0.2)
    return time.time() - start


def collect(run):
    """The run's frontier points, from the eval records of its metrics.jsonl (those of a run that stopped early
    as well: a diverged run keeps the points it reached)."""
    points = []
    for r in read_metrics(os.path.join(run.out, "metrics.jsonl")):
        if r.get("split") == "eval" and "frontier/kl" in r:
            point = {"method": run.method, "setting": run.setting, "step": r["step"],
                     "train_seconds": r.get("train_seconds", 0.0)}
            point.update({k.split("/", 1)[1]: v for k, v in r.items() if k.startswith("frontier/")})
            points.append(point)
    return points


def _run_args(run):
    """The arguments the run's script parsed, as its summary.json keeps them ({} for a run without one)."""
    return (read_summary(run.out) or {}).get("args") or {}


def _samples_per_step(args):
    """RL: prompts x samples per prompt (P x G) in one step."""
    return args.get("prompts", 0) * args.get("group_size", 0)


def passes_per_step(run):
    """Sequences through the networks per training step, from the run's own arguments (summary.json):
    -> (forward, backward, sampled). DPO's reference costs one forward over the data before the loop."""
    args = _run_args(run)
    if run.script == "04_rlvr.py":
        n = _samples_per_step(args)
        models = 2 if args.get("reward") == "model" else 1  # the reference, and the reward model for RLHF
        return n * (models + args.get("inner_epochs", 0)), n * args.get("inner_epochs", 0), n
    batch = args.get("batch_size", 0) * (1 if run.script == "02_sft.py" else 2)  # chosen + rejected
    return batch, batch, 0


def sampled_tokens(run):
    """Tokens the policy sampled while it trained (RL only): completion length x samples, summed over steps."""
    if run.script != "04_rlvr.py":
        return 0
    per_step = _samples_per_step(_run_args(run))
    return round(sum(r["completion_length"] * per_step for r in read_metrics(os.path.join(run.out, "metrics.jsonl"))
                     if r.get("split") == "train" and "completion_length" in r))


def _finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def _reward_model_seconds(todo, run):
    """The reward model's training time (its loop without the evaluations), for a run that needs it: RLHF
    pays for it before its first step."""
    need = next((r for r in todo if r.out == run.needs), None)
    if need is None:
        return 0.0
    evals = [r for r in read_metrics(os.path.join(need.out, "metrics.jsonl")) if r.get("split") == "eval"]
    return evals[-1].get("train_seconds", 0.0) if evals else 0.0


def cost_rows(todo, key="reward_train_wordings"):
    """One row per method: models in memory, passes per step, sampled tokens, the training time its fastest
    setting took to reach 90 % of the best true reward any run reached (RLHF's includes training its reward
    model), and its diverged/collapsed settings."""
    points = [p for r in todo for p in r.points if _finite(p.get(key))]
    best = max((p[key] for p in points), default=float("nan"))
    rows = []
    for method, (_, memory) in METHODS.items():
        runs = [r for r in todo if r.method == method]
        if not runs:
            continue
        fwd, bwd, sampled = passes_per_step(runs[0])
        # each run's first point at 90 % of the best, timed with its reward model's training (RLHF)
        hits = [(p["train_seconds"] + _reward_model_seconds(todo, r), p) for r in runs for p in r.points
                if _finite(p.get(key)) and p[key] >= 0.9 * best]
        first_seconds, first = min(hits, key=lambda h: h[0], default=(None, None))
        collapsed = [r for r in runs if r.status == "finished" and len(r.points) > 1 and _finite(r.points[-1][key])
                     and r.points[-1][key] < r.points[0][key] - COLLAPSE_DROP]
        rows.append({"method": method, "models_in_memory": memory, "forward_sequences_per_step": fwd,
                     "backward_sequences_per_step": bwd, "sampled_sequences_per_step": sampled,
                     "sampled_tokens": sum(sampled_tokens(r) for r in runs),
                     "seconds_to_90pct_of_best": first_seconds,
                     "setting_to_90pct": f"{first['setting']}, step {first['step']}" if first else None,
                     "settings": len(runs), "diverged": sum(r.status == "diverged" for r in runs),
                     "collapsed": len(collapsed), "failed": sum(r.status in ("failed", "skipped") for r in runs)})
    return rows, best


def draw(todo, path):
    """frontier.png: true reward against KL(pi || pi_ref), in training and in held-out wordings (one line per
    setting, in step order, from the SFT model at KL 0); and RLHF's learned reward beside its true reward."""
    fig, grid = plt.subplots(2, 2, figsize=(13, 10.5))
    axes = [grid[0][0], grid[0][1], grid[1][0]]
    for ax, key, title in ((axes[0], "reward_train_wordings", "true reward, training wordings"),
                           (axes[1], "reward_heldout_wordings", "true reward, held-out wordings")):
        for run in todo:
            pts = [p for p in run.points if _finite(p["kl"]) and _finite(p.get(key))]
            if not pts:
                continue
            colour = METHODS[run.method][0]
            same = [r for r in todo if r.method == run.method]
            style = ("-", "--", ":", "-.")[same.index(run) % 4]
            ax.plot([p["kl"] for p in pts], [p[key] for p in pts], style, marker="o", ms=4, color=colour,
                    label=f"{run.method} {run.setting}")
        ax.set_xlabel("KL(π ‖ π_ref) per reply (nats), sampled at T = 1")
        ax.set_ylabel("true reward (claim grader)")
        ax.set_title(title, fontsize=11)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    grid[1][1].axis("off")
    grid[1][1].legend(handles, labels, loc="center", fontsize=10, ncol=2, title="method, strength (one line per run, "
                      "step 0 at KL 0)")
    ax, true_ax = axes[2], axes[2].twinx()
    for run in (r for r in todo if r.method == "RLHF"):
        pts = [p for p in run.points if _finite(p.get("reward_model"))]
        line, = ax.plot([p["step"] for p in pts], [p["reward_model"] for p in pts], "-o", ms=4,
                        label=f"learned reward, {run.setting}")
        true_ax.plot([p["step"] for p in pts], [p["reward_train_wordings"] for p in pts], "--s", ms=3,
                     color=line.get_color(), label=f"true reward, {run.setting}")
    ax.set_ylabel("learned reward (solid)")
    true_ax.set_ylabel("true reward, training wordings (dashed)")
    ax.set_xlabel("RL step")
    ax.set_title("RLHF: does the learned reward rise while the true one falls?", fontsize=11)
    lines = ax.get_legend_handles_labels(), true_ax.get_legend_handles_labels()
    ax.legend(lines[0][0] + lines[1][0], lines[0][1] + lines[1][1], fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path, title="DPO vs RLHF vs SFT on the good answers: reward against KL to the SFT model",
                dpi=100)


def read_result(runs):
    """<runs>/frontier/frontier.json, or None (not run yet, or unreadable: the report goes on without it)."""
    try:
        with open(os.path.join(runs, "frontier", "frontier.json"), encoding="utf-8") as f:
            result = json.load(f)
        return result if isinstance(result, dict) and isinstance(result.get("runs"), list) else None
    except (OSError, ValueError):
        return None


def best_runs(result, key="reward_train_wordings"):
    """Per method, the run whose last point has the highest true reward -> [(run, its last point)]."""
    out = []
    for method in METHODS:
        ends = [(r, r["points"][-1]) for r in result["runs"] if r["method"] == method and r["points"]
                and _finite(r["points"][-1].get(key))]
        if ends:
            out.append(max(ends, key=lambda e: e[1][key]))
    return out


def result_for_lessons(result):
    """What lesson 5's "your run" box shows: the best setting of each method, and the cost table."""
    def num(x, digits=3):
        return round(x, digits) if _finite(x) else None
    return {"command": result["command"], "wall time (min)": num(result["wall_minutes"], 1),
            "best setting of each method (last point)": [
                {"method": r["method"], "setting": r["setting"], "step": p["step"], "KL": num(p["kl"]),
                 "true reward, training wordings": num(p["reward_train_wordings"]),
                 "held-out wordings": num(p["reward_heldout_wordings"])} for r, p in best_runs(result)],
            "cost": [{"method": c["method"], "models in memory": c["models_in_memory"].split(":")[0],
                      "sequences per step (fwd / bwd / sampled)": f"{c['forward_sequences_per_step']} / "
                      f"{c['backward_sequences_per_step']} / {c['sampled_sequences_per_step']}",
                      "sampled tokens": c["sampled_tokens"],
                      "seconds to 90 % of the best": num(c["seconds_to_90pct_of_best"], 0),
                      "diverged / collapsed": f"{c['diverged']} / {c['collapsed']} of {c['settings']}"}
                     for c in result["cost"]]}


def cell(x, fmt="{:.3f}"):
    """A table cell: the number, or a dash for a missing or NaN one."""
    return fmt.format(x) if _finite(x) else "–"


def result_markdown(result):
    """The report's section: the last point of every run (and the SFT model), then the cost table."""
    lines = ["## DPO vs RLHF vs SFT on the good answers: the reward-KL frontier", "",
             f"`{result['command']}` (seed {result['seed']}, {cell(result['wall_minutes'], '{:.1f}')} min; figure "
             "[frontier/frontier.png](frontier/frontier.png)). KL(π‖π_ref) per reply, sampled at T = 1; true reward = "
             "the claim grader's score of the same replies (polite, and the right verdict), on held-out opinion "
             f"prompts whose fact the SFT model knows ({result['prompts']} prompts, {result['samples']} replies).", "",
             "| method | setting | status | step | KL | true reward, training wordings | held-out wordings "
             "| learned reward |", "|---|---|---|---|---|---|---|---|"]
    sft = next((p for r in result["runs"] for p in r["points"] if p["step"] == 0), None)
    if sft:
        lines.append(f"| SFT (every run's step 0) | | | 0 | {cell(sft['kl'])} | {cell(sft['reward_train_wordings'])} | "
                     f"{cell(sft['reward_heldout_wordings'])} | {cell(sft.get('reward_model'))} |")
    for r in result["runs"]:
        last = r["points"][-1] if r["points"] else {}
        lines.append(f"| {r['method']} | {r['setting']} | {r['status']} | {last.get('step', '–')} | "
                     f"{cell(last.get('kl'))} | {cell(last.get('reward_train_wordings'))} | "
                     f"{cell(last.get('reward_heldout_wordings'))} | {cell(last.get('reward_model'))} |")
    lines += ["", f"Cost, side by side (the best true reward any point reached, training wordings: "
              f"{cell(result['best_true_reward'])}; time = training loop only, evaluations excluded, "
              f"{result['threads']} CPU thread(s) per run):", "",
              "| method | models in memory while training | sequences per step: forward / backward / sampled "
              "| sampled tokens | training time to 90 % of the best (RLHF: with its reward model) "
              "| settings: diverged / collapsed |",
              "|---|---|---|---|---|---|"]
    for c in result["cost"]:
        reach = (f"{c['seconds_to_90pct_of_best']:.0f} s ({c['setting_to_90pct']})"
                 if c["seconds_to_90pct_of_best"] is not None else "not reached")
        lines.append(f"| {c['method']} | {c['models_in_memory']} | {c['forward_sequences_per_step']} / "
                     f"{c['backward_sequences_per_step']} / {c['sampled_sequences_per_step']} | "
                     f"{c['sampled_tokens']:,} | {reach} | {c['diverged']} / {c['collapsed']} of {c['settings']} |")
    return lines + [""]


def band_markdown(results, names):
    """The headline points over seeds: for every (method, setting) that all results ran, its last point's KL
    and true rewards as mean (min to max); the SFT model's first."""
    def stat(values):
        got = [v for v in values if _finite(v)]
        if not got:
            return "–"
        return f"{sum(got) / len(got):.3f} ({min(got):.3f} to {max(got):.3f})"
    keys = ("kl", "reward_train_wordings", "reward_heldout_wordings")
    lines = [f"Over {len(results)} seeds ({', '.join(names)}): the last point of each run, mean (min to max).", "",
             "| method | setting | KL(π‖π_ref) | true reward, training wordings | held-out wordings |",
             "|---|---|---|---|---|"]
    firsts = [next((r["points"][0] for r in res["runs"] if r["points"]), {}) for res in results]
    lines.append("| SFT (step 0) | | " + " | ".join(stat([f.get(k) for f in firsts]) for k in keys) + " |")
    ends = [{(r["method"], r["setting"]): r["points"][-1] for r in res["runs"] if r["points"]} for res in results]
    for method, setting in (k for k in ends[0] if all(k in e for e in ends)):
        lines.append(f"| {method} | {setting} | " + " | ".join(stat([e[(method, setting)].get(k) for e in ends])
                                                               for k in keys) + " |")
    return lines + [""]


def main():
    import argparse

    from .cli import device_arg, path_arg, positive_int, seed_arg
    from .errors import UserError, print_user_errors_as_one_sentence
    from .report import update_quietly
    parser = argparse.ArgumentParser(prog="python -m gpt_mini.frontier", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=path_arg, default=layout.RUNS,
                        help="the pipeline's runs folder: reads <runs>/sft, writes <runs>/frontier and the report")
    parser.add_argument("--quick", action="store_true", help="tiny settings, fewer strengths (a smoke test)")
    parser.add_argument("--seed", type=seed_arg, default=0, help="passed to every run")
    parser.add_argument("--device", type=device_arg, default="auto", help="passed to every run")
    parser.add_argument("--jobs", type=positive_int, default=None,
                        help="runs side by side (default: one per CPU core, at most 4; one on a GPU)")
    parser.add_argument("--band", type=path_arg, nargs="+", default=None, metavar="RUNS",
                        help="train nothing: read the frontier.json of --runs and of these runs folders (other "
                             "seeds) and write the band of their headline points to <runs>/frontier/band.md")
    parser.add_argument("--collect-only", action="store_true",
                        help="train nothing: rebuild frontier.json, the figure and the report from the runs already "
                             "in <runs>/frontier (after an interrupted command, or to redraw)")
    args = parser.parse_args()
    print_user_errors_as_one_sentence()
    if args.band:
        return write_band([args.runs] + args.band)
    sft = layout.stage_dir("sft", args.runs)
    if not os.path.isfile(os.path.join(sft, "model.pt")):
        raise UserError(f"{sft}/model.pt is missing: the frontier starts from the pipeline's SFT model, "
                        f"so run `python run_all.py` (or 01_pretrain.py and 02_sft.py) with --runs {args.runs} first")
    gpu = args.device.startswith(("cuda", "mps")) or (args.device == "auto" and _has_gpu())
    jobs = args.jobs or (1 if gpu else max(1, min(4, os.cpu_count() or 1)))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    out, logs = os.path.join(args.runs, "frontier"), os.path.join(args.runs, "frontier", "logs")
    todo = plan(args.runs, out, args.quick, args.seed, args.device)
    command = " ".join(["python -m gpt_mini.frontier"] + sys.argv[1:])
    if args.collect_only:  # the wall time and command of the run that trained them, when it wrote them
        earlier = read_result(args.runs) or {}
        wall, command = earlier.get("wall_minutes", float("nan")) * 60, earlier.get("command", command)
        for run in todo:
            run.status = _status_from_files(run, logs)
    else:
        print(f"{len(todo)} runs from {sft}, {jobs} at a time, {threads} thread(s) each; logs in {logs}")
        wall = run_all(todo, logs, jobs, threads)
    for run in todo:
        run.points = collect(run)
    cost, best = cost_rows(todo)
    prompts, samples = next(((p["prompts"], p["samples"]) for r in todo for p in r.points if "prompts" in p),
                            (None, None))
    result = {"command": command, "seed": args.seed,
              "quick": args.quick, "wall_minutes": wall / 60, "jobs": jobs, "threads": threads, "prompts": prompts,
              "samples": samples, "best_true_reward": best, "cost": cost,
              "runs": [{"method": r.method, "setting": r.setting, "status": r.status, "wall_s": r.wall_s,
                        "folder": r.out, "points": r.points} for r in todo if r.script != "train_reward_model.py"],
              "points": [p for r in todo for p in r.points]}
    path = os.path.join(out, "frontier.json")
    try:
        with open(path + ".tmp", "w") as f:
            json.dump(result, f, indent=1)
        os.replace(path + ".tmp", path)
        draw([r for r in todo if r.points], os.path.join(out, "frontier.png"))
    except OSError as e:
        raise UserError(f"cannot write {path} or frontier.png ({e.strerror})") from None
    update_quietly(args.runs)
    print("\n".join(result_markdown(result)))
    bad = [r for r in todo if r.status not in ("finished", "diverged")]
    print(f"frontier done in {wall / 60:.1f} min: {path}, frontier.png; the table is in {args.runs}/report.md"
          + (f"; {len(bad)} run(s) failed or missing, see {logs}" if bad else ""))
    return 1 if bad else 0


def _log_path(run, log_dir):
    return os.path.join(log_dir, f"{run.method}-{run.setting}.log".replace(" ", "_"))


def _status_from_files(run, log_dir):
    """--collect-only: finished (its summary.json exists), diverged or failed (from its log), or missing."""
    if read_summary(run.out) is not None:
        return "finished"
    return _why_failed(_log_path(run, log_dir)) if os.path.exists(_log_path(run, log_dir)) else "missing"


def write_band(folders):
    """--band: <first>/frontier/band.md from the frontier.json of every runs folder given."""
    from .errors import UserError
    results = [read_result(f) for f in folders]
    missing = [f for f, r in zip(folders, results) if r is None]
    if missing:
        raise UserError(f"no readable frontier/frontier.json in {', '.join(missing)}: run python -m gpt_mini.frontier "
                        f"--runs DIR --seed N there first")
    lines = band_markdown(results, [os.path.basename(os.path.normpath(f)) for f in folders])
    with open(os.path.join(folders[0], "frontier", "band.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _has_gpu():
    import torch
    return torch.cuda.is_available() or torch.backends.mps.is_available()
