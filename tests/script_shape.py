"""
How much of each stage script is the algorithm: a line count anyone can rerun.

    python tests/script_shape.py          # the table for 01_pretrain.py ... 04_rlvr.py

Only code lines count: the docstring, imports, comments and blank lines do not. Each
statement is classified by what it does, and all of its physical lines go to that class:

  command line   the argparse parser and its flags (statements that name `parser` or `cli.`)
  reporting      printing, logging, progress, evaluation, plots, the report and checkpoint
                 saving (calls to print, log, progress, evaluate, plots, report, sweep,
                 checkpoint.save_checkpoint), and error handling (try/except lines)
  algorithm      everything else: device and seeds, loading the model and the data, the
                 optimizer, and the loop itself (batch -> forward -> loss -> backward -> step)

A compound statement (for, with, if, def) is split: its body's statements are classified one by
one, and its header line(s) count as algorithm unless no statement in its body is algorithm; then
they go with the body's most common class (an `if logged:` block that only logs is reporting).
"""

import ast
import io
import os
import sys
import tokenize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ["01_pretrain.py", "02_sft.py", "03_dpo.py", "04_rlvr.py", "train_reward_model.py"]

REPORTING_CALLS = {"print", "log", "progress", "evaluate", "plots", "report", "sweep", "write", "sys",
                   "save_checkpoint", "runlog", "finish_stage", "held_out", "held_out_metrics", "task_accuracy",
                   "lm_loss", "assistant_loss", "logratio_views", "complete", "print0", "tracked"}


def _code_lines(source):
    """Line numbers holding code: not blank, not only a comment."""
    lines = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                            tokenize.ENCODING, tokenize.ENDMARKER):
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines


def _names(node):
    """Every name and attribute a statement mentions."""
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            found.add(sub.attr)
    return found


def _kind(stmt):
    names = _names(stmt)
    if "parser" in names or "cli" in names:
        return "command line"
    calls = set()
    for sub in ast.walk(stmt):
        if isinstance(sub, ast.Call):
            calls |= _names(sub.func)
    if calls & REPORTING_CALLS:
        return "reporting"
    return "algorithm"


BODIES = ("body", "orelse", "finalbody")


def classify(source):
    """-> {line number: class} for every code line of a script."""
    tree = ast.parse(source)
    code = _code_lines(source)
    out = {}

    def visit(stmts):
        kinds = []
        for stmt in stmts:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(stmt, ast.Expr) and isinstance(getattr(stmt.value, "value", None), str):
                continue  # a docstring
            if isinstance(stmt, ast.Try):
                inner = visit(stmt.body) + visit(stmt.orelse) + visit(stmt.finalbody)
                for handler in stmt.handlers:
                    for n in range(handler.lineno, handler.end_lineno + 1):
                        out.setdefault(n, "reporting")
                for n in range(stmt.lineno, stmt.body[0].lineno):
                    out.setdefault(n, "reporting")
                kinds += inner
                continue
            children = [b for name in BODIES for b in [getattr(stmt, name, None)] if b]
            if children:
                if isinstance(stmt, ast.If):
                    children = [stmt.body] + ([stmt.orelse] if stmt.orelse else [])
                inner = [k for body in children for k in visit(body)]
                header = "algorithm" if "algorithm" in inner or not inner else max(set(inner), key=inner.count)
                first_body = stmt.body[0].lineno
                for n in range(stmt.lineno, first_body):
                    out.setdefault(n, header)
                if isinstance(stmt, ast.If) and stmt.orelse:
                    out.setdefault(stmt.orelse[0].lineno - 1, header)  # the `else:` line
                kinds.append(header)
                kinds += inner
                continue
            kind = _kind(stmt)
            for n in range(stmt.lineno, stmt.end_lineno + 1):
                out.setdefault(n, kind)
            kinds.append(kind)
        return kinds

    visit(tree.body)
    return {n: k for n, k in out.items() if n in code}


def shares(path):
    """-> {class: number of code lines} for one script."""
    with open(path, encoding="utf-8") as f:
        lines = classify(f.read())
    counts = {"algorithm": 0, "command line": 0, "reporting": 0}
    for kind in lines.values():
        counts[kind] += 1
    return counts


def table(root=ROOT):
    rows = ["| script | code lines | algorithm | command line | reporting | algorithm share |",
            "|---|---|---|---|---|---|"]
    for script in SCRIPTS:
        c = shares(os.path.join(root, script))
        total = sum(c.values())
        rows.append(f"| {script} | {total} | {c['algorithm']} | {c['command line']} | {c['reporting']} | "
                    f"{100 * c['algorithm'] / total:.0f} % |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(sys.argv[1] if len(sys.argv) > 1 else ROOT))
