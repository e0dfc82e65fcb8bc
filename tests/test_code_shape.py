"""The shape of the code: each stage script reads as its algorithm, and each convention has one home."""

import ast
import os
import re

import pytest
import script_shape
from conftest import ROOT

SCRIPTS = script_shape.SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_algorithm_is_at_least_half_of_each_stage_script(script):
    counts = script_shape.shares(os.path.join(ROOT, script))
    assert counts["algorithm"] / sum(counts.values()) >= 0.5, (script, counts)


def _training_loop(tree):
    """The top-level `for step in range(...)` loop of a stage script."""
    loops = [n for n in tree.body if isinstance(n, ast.For) and getattr(n.target, "id", None) == "step"]
    assert len(loops) == 1
    return loops[0]


def _calls(node):
    return [ast.unparse(c.func) for c in ast.walk(node) if isinstance(c, ast.Call)]


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_loop_body_has_one_logging_call_after_the_step(script):
    with open(os.path.join(ROOT, script), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    body = _training_loop(tree).body
    calls = [(i, call) for i, stmt in enumerate(body) for call in _calls(stmt)]
    logging = [(i, c) for i, c in calls if c.startswith(("progress.", "print", "log.", "runtime.print0"))]
    assert [c for _, c in logging] == ["progress.step"], logging
    step_at = max(i for i, c in calls if c == "optimizer.step")
    assert logging[0][0] > step_at  # after the optimizer step


@pytest.mark.parametrize("script", SCRIPTS)
def test_train_mode_is_set_once_before_the_loop(script):
    """One eval-mode convention (runtime.evaluation): evaluations give the model back as they found it."""
    with open(os.path.join(ROOT, script), encoding="utf-8") as f:
        source = f.read()
    assert len(re.findall(r"\.train\(\)", source)) == 1, script
    loop = _training_loop(ast.parse(source))
    assert not any(c.endswith((".train", ".eval")) for c in _calls(loop))


def _python_files():
    for folder in ("gpt_mini", "."):
        for name in sorted(os.listdir(os.path.join(ROOT, folder))):
            if name.endswith(".py"):
                yield os.path.join(folder, name)


def test_the_runs_layout_is_written_in_one_place():
    """runs/<stage> and the default beta folder come from gpt_mini/layout.py everywhere else."""
    for path in _python_files():
        if path.endswith("layout.py"):
            continue
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            code = [line.split("#")[0] for line in f if not line.lstrip().startswith(("#", '"""'))]
        strings = [s for line in code for s in re.findall(r"[f]?\"[^\"]*\"", line)]
        for s in strings:
            assert "beta-0.1" not in s and not re.search(r"\"runs/(pretrain|sft|dpo|rlvr)", s), (path, s)


def test_library_code_raises_and_only_entry_points_exit():
    """sys.exit / SystemExit only in a command-line entry point (a main() or the __main__ block)."""
    for path in _python_files():
        if not path.startswith("gpt_mini"):
            continue
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in tree.body:
            is_entry = (isinstance(node, ast.FunctionDef) and node.name == "main") or (
                isinstance(node, ast.If) and "__main__" in ast.unparse(node.test))
            if not is_entry:
                text = ast.unparse(node)
                assert "sys.exit" not in text and "SystemExit" not in text, (path, text[:200])


def test_figures_are_saved_by_one_function():
    for path in _python_files():
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            source = f.read()
        saves = source.count(".savefig(")
        assert saves == (1 if path.endswith("plots.py") else 0), path


def test_knows_vs_says_keys_are_listed_once():
    """evaluate.KNOWS_VS_SAYS is the list; nobody types the claim keys in a row again."""
    typed_again = re.compile(r'"claims_false_agreed",\s*"claims_false_corrected"')
    for path in _python_files():
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            source = f.read()
        assert len(typed_again.findall(source)) == (1 if path.endswith("evaluate.py") else 0), path


def test_drift_names_no_metric():
    """One meaning for "drift" (how far the policy moved, measured by the token KL): no metric is called so."""
    for path in _python_files():
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            source = f.read()
        assert '"drift"' not in source and "eval/drift" not in source and "def drift" not in source, path
