"""Refresh the code excerpts in the lesson pages from the current source.

Every excerpt in lessons/*.html is written as

    <pre class="excerpt" data-source="gpt_mini/losses.py" data-function="dpo_loss"><code>...</code></pre>

(attributes in that order). data-function is a top-level function or class name,
or "Class.method". This script replaces the inside of <code> with the exact text of
that definition (decorators included, indentation removed), HTML-escaped.

    python lessons/sync_excerpts.py          # rewrite the pages
    python lessons/sync_excerpts.py --check  # only report; exit 1 if anything is stale or missing

tests/test_lessons.py uses the same functions to check the pages.
"""

import argparse
import ast
import html
import re
import sys
import textwrap
from pathlib import Path

LESSONS_DIR = Path(__file__).resolve().parent
REPO_ROOT = LESSONS_DIR.parent

EXCERPT_RE = re.compile(
    r'(<pre class="excerpt" data-source="(?P<source>[^"]+)" data-function="(?P<function>[^"]+)"><code>)'
    r'(?P<code>.*?)'
    r'(</code></pre>)',
    re.DOTALL,
)
MISSING_PREFIX = "# excerpt not available yet: "


class ExcerptError(LookupError):
    """The file or the function an excerpt names does not exist."""


def _find_node(tree, dotted_name):
    scope = tree.body
    node = None
    for part in dotted_name.split("."):
        node = next((n for n in scope
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == part),
                    None)
        if node is None:
            return None
        scope = node.body if isinstance(node, ast.ClassDef) else []
    return node


def function_source(source, function, repo_root=REPO_ROOT):
    """Exact text of the definition `function` in the file `source` (relative to repo_root)."""
    path = Path(repo_root) / source
    if not path.is_file():
        raise ExcerptError(f"{source} does not exist")
    text = path.read_text(encoding="utf-8")
    node = _find_node(ast.parse(text), function)
    if node is None:
        raise ExcerptError(f"{source} has no function or class named {function}")
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    lines = text.splitlines()[first - 1:node.end_lineno]
    return textwrap.dedent("\n".join(lines))


def excerpts_in(page_text):
    """[(source, function, code text as shown on the page)] for every excerpt in a page."""
    return [(m["source"], m["function"], html.unescape(m["code"])) for m in EXCERPT_RE.finditer(page_text)]


def sync_text(page_text, repo_root=REPO_ROOT):
    """Return (new page text, [(source, function, status)]) with status 'ok', 'updated' or 'missing: ...'."""
    report = []

    def replace(m):
        try:
            code = function_source(m["source"], m["function"], repo_root)
        except ExcerptError as err:
            report.append((m["source"], m["function"], f"missing: {err}"))
            placeholder = MISSING_PREFIX + f"{m['source']}: {m['function']} ({err})"
            return m.group(1) + html.escape(placeholder, quote=False) + m.group(5)
        status = "ok" if html.unescape(m["code"]) == code else "updated"
        report.append((m["source"], m["function"], status))
        return m.group(1) + html.escape(code, quote=False) + m.group(5)

    return EXCERPT_RE.sub(replace, page_text), report


TOKENIZER_SOURCE = REPO_ROOT / "data" / "tokenizer.tiktoken"
TOKENIZER_JS = LESSONS_DIR / "js" / "tokenizer_data.js"


def tokenizer_data_js(rank_file=TOKENIZER_SOURCE):
    """The text of js/tokenizer_data.js: the BPE ranks (base64, in rank order) and the special-token ids."""
    sys.path.insert(0, str(REPO_ROOT))
    from gpt_mini.tokenizer import SPECIAL_TOKENS
    ranks = {}
    for line in Path(rank_file).read_text(encoding="ascii").splitlines():
        if line.strip():
            token, rank = line.split()
            ranks[int(rank)] = token
    if sorted(ranks) != list(range(len(ranks))):
        raise ValueError(f"{rank_file}: ranks are not 0..n-1")
    specials = {tok: len(ranks) + i for i, tok in enumerate(SPECIAL_TOKENS)}
    items = ",".join(f'"{ranks[i]}"' for i in range(len(ranks)))
    specials_js = ", ".join(f'"{k}": {v}' for k, v in specials.items())
    return ("/* Written by lessons/sync_excerpts.py from data/tokenizer.tiktoken; do not edit. */\n"
            f"window.GM_TOKENIZER_DATA = {{\n  specials: {{{specials_js}}},\n  ranks: [{items}]\n}};\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report only, do not write")
    args = parser.parse_args(argv)
    bad = 0
    for page in sorted(LESSONS_DIR.glob("*.html")):
        old = page.read_text(encoding="utf-8")
        new, report = sync_text(old)
        for source, function, status in report:
            print(f"{page.name:28s} {source}:{function:28s} {status}")
            if status != "ok":
                bad += 1
        if new != old and not args.check:
            page.write_text(new, encoding="utf-8")
    if TOKENIZER_SOURCE.is_file():
        text = tokenizer_data_js()
        current = TOKENIZER_JS.read_text(encoding="utf-8") if TOKENIZER_JS.is_file() else None
        print(f"{'js/tokenizer_data.js':28s} {'ok' if text == current else 'updated'}")
        if text != current:
            bad += 1
            if not args.check:
                TOKENIZER_JS.write_text(text, encoding="utf-8")
    missing = sum(1 for page in LESSONS_DIR.glob("*.html")
                  for _, _, code in excerpts_in(page.read_text(encoding="utf-8")) if code.startswith(MISSING_PREFIX))
    if args.check:
        return 1 if bad else 0
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
