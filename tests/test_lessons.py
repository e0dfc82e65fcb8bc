"""Browser tests for the static lesson pages in lessons/.

Drives Debian's /usr/bin/chromium through Python Playwright, headless and offline:

  * every page loads with no page error and no console error, except failed loads of the
    optional files listed in OPTIONAL_FILES (a learner's runs/ outputs, and figures the lead
    adds to lessons/figures/ later), which the pages are written to handle;
  * every request that is not file: is blocked by routing and recorded; none may be attempted;
  * every <math> element has a non-zero height, and no raw TeX shows in the text;
  * every widget, driven by clicks, typing and slider moves, shows the numbers the Python
    reference (gpt_mini.losses) gives for the same inputs;
  * every code excerpt equals the current source of the function it names;
  * every relative link and src resolves to an existing file;
  * a screenshot of every page goes to /tmp/lesson_shots/ for a human to look at.

Run:  .venv/bin/python -m pytest -q tests/test_lessons.py
Needs: apt-get install -y chromium   and   .venv/bin/pip install playwright
(never `playwright install`: the browser comes from Debian).
"""

import html.parser
import math
import re
import shutil
import struct
import sys
import zlib
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
sys.path.insert(0, str(LESSONS))
sys.path.insert(0, str(ROOT))

import sync_excerpts  # noqa: E402  (lessons/sync_excerpts.py)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path("/tmp/lesson_shots")

LESSON_PAGES = ["01_model_and_tokenizer.html", "02_pretraining.html", "03_sft.html", "04_cot_sft.html",
                "05_dpo.html", "06_rlvr.html"]
# lesson 5's companions (a lab notebook and the reference half) are not lessons with the fixed sections
COMPANION_PAGES = ["05b_finding_a_world.html", "05c_dpo_in_depth.html"]
PAGES = ["index.html", *LESSON_PAGES, *COMPANION_PAGES]

# Files a page may try to load that are allowed to be absent: the learner's own run outputs
# (written by the stage scripts under runs/) and figures the lead commits to lessons/figures/.
# A failed load of one of these is the documented, handled case ("run python 0X_... to see
# your own"); a failed load of anything else is an error.
OPTIONAL_FILES = re.compile(r"^file://.*/(runs/.+|lessons/figures/.+)$")

# ---------------------------------------------------------------------------------------
# browser plumbing


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing. Install Debian's Chromium first: "
                    "`apt-get update && apt-get install -y chromium` (as root). "
                    "Do not use `playwright install`; it cannot download browsers here.", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Python Playwright is missing: `.venv/bin/pip install playwright` "
                    "(the browser itself comes from `apt-get install -y chromium`).", pytrace=False)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Visit:
    """One page opened offline, with everything it did recorded."""

    def __init__(self, browser, path, width=1100):
        self.console_errors = []     # (text, url)
        self.page_errors = []
        self.network_attempts = []   # every non-file: request, blocked
        self.failed_loads = []       # (url, failure)
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda err: self.page_errors.append(str(err)))
        self.page.on("requestfailed", lambda req: self.failed_loads.append((req.url, req.failure)))
        self.page.goto(Path(path).resolve().as_uri(), wait_until="load")
        self.page.wait_for_timeout(150)  # let optional-file fallbacks settle

    def _route(self, route):
        url = route.request.url
        if url.startswith("file:"):
            route.continue_()
        else:
            self.network_attempts.append(url)
            route.abort()

    def _console(self, msg):
        if msg.type == "error":
            self.console_errors.append((msg.text, (msg.location or {}).get("url", "")))

    def unexpected_errors(self):
        bad = list(self.page_errors)
        for text, url in self.console_errors:
            if text.startswith("Failed to load resource") and OPTIONAL_FILES.match(url):
                continue
            bad.append(f"console: {text} ({url})")
        for url, failure in self.failed_loads:
            if url.startswith("file:") and not OPTIONAL_FILES.match(url):
                bad.append(f"failed load: {url} ({failure})")
        return bad

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser):
    opened = []

    def _open(name, root=LESSONS, width=1100):
        v = Visit(browser, Path(root) / name, width=width)
        opened.append(v)
        return v

    yield _open
    for v in opened:
        v.close()


def value_of(page, selector):
    """Full-precision number a widget wrote into data-value."""
    raw = page.get_attribute(selector, "data-value")
    assert raw not in (None, ""), f"{selector} shows no number"
    return float(raw)


def shown(page, selector):
    """The rounded number as printed on the page (sign, %, and spaces removed)."""
    text = page.inner_text(selector).strip().replace("%", "").replace("+", "").replace("−", "-")
    return float(text)


def set_range(page, selector, value):
    """Move a slider the way a drag ends: set the value and fire input/change."""
    page.locator(selector).evaluate(
        "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true}));"
        " el.dispatchEvent(new Event('change', {bubbles: true})); }", str(value))
    return float(page.locator(selector).input_value())


def fill(page, selector, value):
    page.fill(selector, str(value))
    page.locator(selector).dispatch_event("change")


# ---------------------------------------------------------------------------------------
# every page: loads clean, offline, math renders, links resolve


def test_all_pages_exist():
    missing = [p for p in PAGES if not (LESSONS / p).is_file()]
    assert not missing, f"lesson pages missing: {missing}"
    assert (LESSONS / "style.css").is_file()


@pytest.mark.parametrize("name", PAGES)
def test_page_loads_offline_without_errors(visit, name):
    v = visit(name)
    assert v.network_attempts == [], f"{name} tried to reach the network: {v.network_attempts}"
    assert v.unexpected_errors() == [], f"{name}: {v.unexpected_errors()}"
    assert v.page.title().strip(), f"{name} has no <title>"


@pytest.mark.parametrize("name", PAGES)
def test_math_renders_and_no_raw_tex(visit, name):
    v = visit(name)
    heights = v.page.eval_on_selector_all("math", "ms => ms.map(m => m.getBoundingClientRect().height)")
    if name in LESSON_PAGES:  # the index and the companion page need no formulas
        assert heights, f"{name} has no <math> at all"
    flat = [i for i, h in enumerate(heights) if not h > 0]
    assert not flat, f"{name}: <math> elements #{flat} render with zero height"
    text = v.page.inner_text("body")
    for tex in ("\\frac", "$$", "\\(", "\\[", "\\mathbb", "\\log", "\\sigma"):
        assert tex not in text, f"{name} shows raw TeX {tex!r}"


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key):
                self.refs.append((tag, attrs[key]))


@pytest.mark.parametrize("name", PAGES)
def test_relative_links_resolve(name):
    parser = _Links()
    parser.feed((LESSONS / name).read_text(encoding="utf-8"))
    problems = []
    for tag, ref in parser.refs:
        if re.match(r"^[a-z][a-z0-9+.-]*:", ref, re.I) or ref.startswith("//"):
            problems.append(f"<{tag}> points outside the lesson folder: {ref} (relative links only, no network)")
            continue
        target, _, anchor = ref.partition("#")
        if target.startswith("../runs/"):  # the learner's own run outputs: absent until they run a stage
            continue
        if not target:
            if anchor not in parser.ids:
                problems.append(f"anchor #{anchor} not found")
            continue
        if not (LESSONS / target).resolve().exists():
            problems.append(f"<{tag}> {ref} does not exist")
    assert not problems, f"{name}: {problems}"


@pytest.mark.parametrize("name", LESSON_PAGES)
def test_page_has_the_required_sections(name):
    text = (LESSONS / name).read_text(encoding="utf-8")
    for section in ("goals", "intuition", "derivation", "code", "widgets", "exercises", "takeaways", "run-it"):
        assert f'id="{section}"' in text, f"{name} lacks the {section} section"
    assert "<details>" in text, f"{name}: exercises need answers in <details>"
    assert 'class="widget"' in text, f"{name} has no widget"
    for link in ('href="index.html"', 'href="../README.md"'):
        assert link in text, f"{name} does not link {link}"


# ---------------------------------------------------------------------------------------
# code excerpts equal the current source


@pytest.mark.parametrize("name", PAGES)
def test_code_excerpts_match_source(name):
    found = sync_excerpts.excerpts_in((LESSONS / name).read_text(encoding="utf-8"))
    if name in LESSON_PAGES:
        assert found, f"{name} quotes no real code"
    for source, function, code in found:
        try:
            expected = sync_excerpts.function_source(source, function)
        except sync_excerpts.ExcerptError as err:
            pytest.fail(f"{name} quotes {source}: {function}, which does not exist ({err})")
        assert code == expected, (f"{name}: excerpt of {source}: {function} is stale; "
                                  "run `python lessons/sync_excerpts.py`")


def test_sync_refuses_a_function_that_does_not_exist():
    page = '<pre class="excerpt" data-source="gpt_mini/losses.py" data-function="no_such_fn"><code></code></pre>'
    _, report = sync_excerpts.sync_text(page)
    assert report[0][2].startswith("missing")
    with pytest.raises(sync_excerpts.ExcerptError):
        sync_excerpts.function_source("gpt_mini/losses.py", "no_such_fn")


# ---------------------------------------------------------------------------------------
# Lesson 5 widgets against gpt_mini.losses

from gpt_mini import losses  # noqa: E402

SEED = dict(pc=[-45, -50, -48, -52], pr=[-48, -52, -46, -55], rc=[-46, -51, -49, -53], rr=[-47, -51, -47, -54])

CALC_CASES = [
    # (policy chosen, policy rejected, ref chosen, ref rejected, beta, eps)
    (SEED["pc"], SEED["pr"], SEED["rc"], SEED["rr"], 0.1, 0.1),
    ([-12.5, -30.25, -7.0, -19.0, -40.0, -3.5], [-11.0, -33.0, -9.5, -19.0, -38.0, -8.0],
     [-13.0, -31.0, -7.5, -18.0, -41.5, -4.0], [-10.5, -31.5, -9.0, -20.0, -39.0, -6.0], 0.5, 0.2),
    ([-3, -3], [-3, -5], [-3, -4], [-3, -4], 0.05, 0.0),   # one exact tie, one win
    ([-80.0], [-60.0], [-70.0], [-70.0], 2.0, 0.3),         # badly wrong, large beta
]


def _t(xs):
    return torch.tensor(xs, dtype=torch.float64)


def python_calc(pc, pr, rc, rr, beta, eps):
    loss, ch, rj = losses.dpo_loss(_t(pc), _t(pr), _t(rc), _t(rr), beta)
    smooth, _, _ = losses.conservative_dpo_loss(_t(pc), _t(pr), _t(rc), _t(rr), beta, label_smoothing=eps)
    m = losses.preference_metrics(ch, rj)
    return {"loss": loss.item(), "smooth": smooth.item(), "acc": 100 * m["rewards/accuracies"],
            "rch": m["rewards/chosen"], "rrj": m["rewards/rejected"], "margin": m["rewards/margins"],
            "lpc": sum(pc) / len(pc), "lpr": sum(pr) / len(pr)}


def test_dpo_calculator_defaults_are_the_seed_vector(visit):
    page = visit("05_dpo.html").page
    assert page.inner_text("#calc-loss") == "0.6219"
    assert page.inner_text("#calc-acc") == "75.0%"
    assert page.inner_text("#calc-smooth") == "0.6369"
    assert page.inner_text("#calc-margin") == "+0.1500"


@pytest.mark.parametrize("case", CALC_CASES, ids=[f"calc{i}" for i in range(len(CALC_CASES))])
def test_dpo_calculator_matches_dpo_loss(visit, case):
    pc, pr, rc, rr, beta, eps = case
    page = visit("05_dpo.html").page
    for sel, vec in (("#calc-pc", pc), ("#calc-pr", pr), ("#calc-rc", rc), ("#calc-rr", rr)):
        page.fill(sel, ", ".join(str(x) for x in vec))
    page.fill("#calc-beta", str(beta))
    page.fill("#calc-eps", str(eps))
    page.click("#calc-go")
    want = python_calc(pc, pr, rc, rr, beta, eps)
    for key, sel, digits in (("loss", "#calc-loss", 4), ("smooth", "#calc-smooth", 4), ("acc", "#calc-acc", 1),
                             ("rch", "#calc-rch", 4), ("rrj", "#calc-rrj", 4), ("margin", "#calc-margin", 4),
                             ("lpc", "#calc-lpc", 4), ("lpr", "#calc-lpr", 4)):
        # preference_metrics reports float32 values, hence the looser tolerance on those keys
        tol = 1e-9 if key in ("loss", "smooth", "lpc", "lpr") else 1e-6
        assert value_of(page, sel) == pytest.approx(want[key], rel=tol, abs=tol), key
        assert shown(page, sel) == pytest.approx(want[key], abs=0.51 * 10 ** -digits), key


def test_dpo_calculator_rejects_bad_input(visit):
    page = visit("05_dpo.html").page
    page.fill("#calc-pc", "-45, -50, oops")
    page.click("#calc-go")
    assert "Need four lists" in page.inner_text("#calc-error")
    assert page.inner_text("#calc-loss") == "—"
    page.click("#calc-reset")
    assert page.inner_text("#calc-loss") == "0.6219"


CURVE_CASES = [(0.0, 0.0), (3.5, 0.0), (-7.5, 0.1), (10.0, 0.25), (-20.0, 0.45), (4.5, 0.1)]
CURVE_BETAS = [0.01, 0.1, 0.5, 1.0]


def python_curve(m, eps, beta):
    pc = torch.tensor([m], dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(1, dtype=torch.float64)
    loss, _, _ = losses.conservative_dpo_loss(pc, zero, zero, zero, beta, label_smoothing=eps)
    loss.backward()
    return loss.item(), pc.grad.item()


@pytest.mark.parametrize("m,eps", CURVE_CASES)
def test_dpo_loss_curve_readout_matches_dpo_loss(visit, m, eps):
    page = visit("05_dpo.html").page
    m_set = set_range(page, "#curve-m", m)
    eps_set = set_range(page, "#curve-eps", eps)
    assert (m_set, eps_set) == (m, eps)
    for i, beta in enumerate(CURVE_BETAS):
        want_loss, want_slope = python_curve(m, eps, beta)
        assert value_of(page, f"#curve-loss-{i}") == pytest.approx(want_loss, rel=1e-9, abs=1e-12)
        assert value_of(page, f"#curve-grad-{i}") == pytest.approx(want_slope, rel=1e-9, abs=1e-12)
        assert shown(page, f"#curve-loss-{i}") == pytest.approx(want_loss, abs=5.1e-5)
    # the curves are drawn: one path per beta
    assert page.locator("#curve-plot path").count() == len(CURVE_BETAS)


def python_simulator(beta, lr, steps, optimizer="sgd"):
    """The documented dynamics, driven through gpt_mini.losses.dpo_loss and autograd: the DPO loss minimised
    directly in the two log-ratios, by plain gradient descent or by torch's Adam with 03_dpo.py's settings
    (betas 0.9 and 0.95, eps 1e-8, no weight decay: gpt_mini/optim.py)."""
    rho_w = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    rho_l = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    zero = torch.zeros(1, dtype=torch.float64)
    if optimizer == "adam":
        opt = torch.optim.Adam([rho_w, rho_l], lr=lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
    else:
        opt = torch.optim.SGD([rho_w, rho_l], lr=lr)
    for _ in range(steps):
        loss, _, _ = losses.dpo_loss(rho_w, rho_l, zero, zero, beta)
        opt.zero_grad()
        loss.backward()
        opt.step()
    rw, rl = beta * rho_w.item(), beta * rho_l.item()
    margin = rw - rl
    return {"rw": rw, "rl": rl, "margin": margin, "gap": rho_w.item() - rho_l.item(),
            "loss": -math.log(1 / (1 + math.exp(-margin))), "weight": 1 / (1 + math.exp(margin))}


def test_simulator_closed_form_one_step():
    # one step from zero at beta=0.1, lr=1: each log-ratio moves by lr*beta*sigmoid(0) = 0.05
    assert python_simulator(0.1, 1.0, 1)["margin"] == pytest.approx(0.01)
    # Adam's first step is lr times the sign of the gradient, whatever beta is: each log-ratio moves by lr
    for beta in (0.01, 1.0):
        assert python_simulator(beta, 0.05, 1, "adam")["gap"] == pytest.approx(0.1, rel=1e-5)  # eps: 2e-6 off


SIM_CASES = [
    # (optimizer, arrow presses on the beta slider from 0.10, learning rate, single steps, +10 clicks, +100 clicks)
    ("sgd", 0, 1.0, 1, 0, 0),
    ("sgd", 0, 1.0, 3, 2, 1),
    ("sgd", 40, 1.0, 7, 0, 0),     # beta 0.50
    ("sgd", 90, 2.5, 0, 3, 0),     # beta 1.00
    ("sgd", -9, 4.0, 5, 0, 2),     # beta 0.01
    ("adam", 0, 0.05, 1, 0, 0),
    ("adam", 0, 0.05, 3, 2, 1),
    ("adam", -9, 0.05, 0, 0, 4),   # beta 0.01, 400 steps
    ("adam", 90, 0.2, 5, 3, 0),    # beta 1.00
]


@pytest.mark.parametrize("case", SIM_CASES, ids=[f"sim{i}-{c[0]}" for i, c in enumerate(SIM_CASES)])
def test_margin_simulator_matches_python(visit, case):
    optimizer, presses, lr, singles, tens, hundreds = case
    page = visit("05_dpo.html").page
    page.select_option("#sim-opt", optimizer)
    fill(page, "#sim-lr", lr)
    slider = page.locator("#sim-beta")
    slider.focus()
    for _ in range(abs(presses)):
        page.keyboard.press("ArrowRight" if presses > 0 else "ArrowLeft")
    beta = float(slider.input_value())
    for _ in range(singles):
        page.click("#sim-step")
    for _ in range(tens):
        page.click("#sim-step10")
    for _ in range(hundreds):
        page.click("#sim-step100")
    steps = singles + 10 * tens + 100 * hundreds
    assert value_of(page, "#sim-k") == steps
    assert page.inner_text("#sim-beta-val") == f"{beta:.2f}"
    want = python_simulator(beta, lr, steps, optimizer)
    for key in ("rw", "rl", "margin", "gap", "loss", "weight"):
        assert value_of(page, f"#sim-{key}") == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
        assert shown(page, f"#sim-{key}") == pytest.approx(want[key], abs=5.1e-5), key
    assert page.inner_text("#sim-acc") == ("100%" if want["margin"] > 0 else "0%")
    # both curves have one point per step (plus the start)
    for plot in ("#sim-plot", "#sim-plot-gap"):
        assert page.get_attribute(plot + " path:last-of-type", "d").count("L") == steps


def test_simulator_starts_with_adam_at_the_documented_learning_rate(visit):
    page = visit("05_dpo.html").page
    assert page.locator("#sim-opt").input_value() == "adam"
    assert page.locator("#sim-lr").input_value() == "0.05"
    page.select_option("#sim-opt", "sgd")
    assert page.locator("#sim-lr").input_value() == "1"  # each optimizer gets its own learning rate


def test_simulator_reset_and_tie_counts_wrong(visit):
    page = visit("05_dpo.html").page
    assert page.inner_text("#sim-acc") == "0%"          # step 0: a tie, counted wrong
    assert page.inner_text("#sim-loss") == "0.6931"
    page.click("#sim-step10")
    assert page.inner_text("#sim-acc") == "100%"
    page.click("#sim-reset")
    assert page.inner_text("#sim-k") == "0"
    assert page.inner_text("#sim-margin") == "+0.0000"


def _drifts(page, optimizer, betas, steps_of_100):
    page.select_option("#sim-opt", optimizer)
    out = []
    for beta in betas:
        set_range(page, "#sim-beta", beta)
        for _ in range(steps_of_100):
            page.click("#sim-step100")
        out.append(value_of(page, "#sim-gap"))
    return out


def test_with_adam_the_simulator_drifts_in_the_beta_sweeps_order(visit):
    """The lesson's claim about beta, checked on the widget: with Adam, as 03_dpo.py trains, 400 steps drift
    furthest at beta 0.01 and least at beta 1, the order of the measured sweep (token KL 0.82, 0.56, 0.17, 0.10),
    while the margin in reward units grows with beta; plain gradient descent flips the small end."""
    page = visit("05_dpo.html").page
    adam = _drifts(page, "adam", (0.01, 0.1, 0.5, 1.0), 4)
    assert adam[0] > adam[1] > adam[2] > adam[3] > 0
    assert [round(d) for d in adam] == [40, 37, 21, 12]  # the numbers the page quotes
    assert value_of(page, "#sim-margin") == pytest.approx(adam[3])  # beta 1: margin = gap
    sgd = _drifts(page, "sgd", (0.01, 0.1), 4)
    assert sgd[0] < sgd[1] and [round(d) for d in sgd] == [4, 20]


# ---------------------------------------------------------------------------------------
# the learner's own run: figures and numbers from runs/, present or absent


def _png(path, w=4, h=3):
    raw = b"".join(b"\x00" + b"\x80\x40\x20" * w for _ in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


RUN_FIGURES = {
    "02_pretraining.html": ["pretrain/loss.png"],
    "03_sft.html": ["sft/curves.png"],
    "04_cot_sft.html": ["sft/curves.png"],
    "05_dpo.html": ["dpo/beta-0.1/token_logratios.png", "dpo/beta_sweep.png", "frontier/frontier.png",
                    "dpo/beta-0.1/curves.png"],
    "06_rlvr.html": ["rlvr/reward.png"],
}


@pytest.fixture
def sandbox(tmp_path):
    """A copy of lessons/ next to an empty runs/ folder, so tests control what exists."""
    shutil.copytree(LESSONS, tmp_path / "lessons", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (tmp_path / "README.md").write_text("readme\n")
    shutil.rmtree(tmp_path / "lessons" / "figures", ignore_errors=True)
    (tmp_path / "lessons" / "figures").mkdir()
    return tmp_path


@pytest.mark.parametrize("name", sorted(RUN_FIGURES))
def test_run_outputs_absent_show_a_note(visit, sandbox, name):
    v = visit(name, root=sandbox / "lessons")
    assert v.unexpected_errors() == []
    states = v.page.eval_on_selector_all("figure.run-figure", "fs => fs.map(f => f.getAttribute('data-state'))")
    assert states and all(s == "missing" for s in states), states
    notes = v.page.eval_on_selector_all("figure.run-figure .run-missing",
                                        "ns => ns.map(n => n.offsetHeight > 0 ? n.innerText : '')")
    assert all("python 0" in n or "python -m gpt_mini" in n for n in notes), notes
    assert v.page.get_attribute(".run-data", "data-state") == "missing"


@pytest.mark.parametrize("name", sorted(RUN_FIGURES))
def test_run_outputs_present_are_shown(visit, sandbox, name):
    for rel in RUN_FIGURES[name]:
        _png(sandbox / "runs" / rel)
    (sandbox / "runs" / "lesson_data.js").write_text(
        "window.GPT_MINI_RUNS = {pretrain: {final_loss: 1.23}, sft: {final_loss: 0.9}, cot_sft: {accuracy: 0.5},"
        " dpo: {beta: 0.1, log: [{step: 100, 'rewards/margins': 0.2, 'rewards/accuracies': 0.7}]},"
        " rlvr: {mean_reward: 0.4}, 'knows vs says': {SFT: {'known false claims agreed with (sycophancy)': 0.895},"
        " DPO: {'known false claims agreed with (sycophancy)': 0.067}},"
        " frontier: {command: 'python -m gpt_mini.frontier', cost: [{method: 'DPO', 'sampled tokens': 0}]}};\n")
    v = visit(name, root=sandbox / "lessons")
    assert v.console_errors == [] and v.page_errors == [], (v.console_errors, v.page_errors)
    states = v.page.eval_on_selector_all("figure.run-figure", "fs => fs.map(f => f.getAttribute('data-state'))")
    assert states and all(s == "shown" for s in states), states
    boxes = v.page.eval_on_selector_all(".run-data", "bs => bs.map(b => b.getAttribute('data-state'))")
    assert boxes and all(b == "shown" for b in boxes), boxes
    assert all(v.page.locator(".run-data .run-missing").nth(i).is_hidden() for i in range(len(boxes)))


def test_knows_vs_says_box_is_a_table_with_one_column_per_model(visit, sandbox):
    (sandbox / "runs").mkdir()
    (sandbox / "runs" / "lesson_data.js").write_text(
        "window.GPT_MINI_RUNS = {'knows vs says': {SFT: {'known false claims agreed with (sycophancy)': 0.895,"
        " 'rude replies': 0.0}, DPO: {'known false claims agreed with (sycophancy)': 0.0674, 'rude replies': NaN}}};\n")
    v = visit("05_dpo.html", root=sandbox / "lessons")
    assert v.unexpected_errors() == []
    box = 'div.run-data[data-stage="knows vs says"]'
    heads = v.page.eval_on_selector_all(box + " thead th", "ts => ts.map(t => t.innerText.trim())")
    rows = v.page.eval_on_selector_all(box + " tbody tr",
                                       "rs => rs.map(r => r.innerText.split('\\t').map(c => c.trim()))")
    assert heads == ["", "SFT", "DPO"]
    assert rows == [["known false claims agreed with (sycophancy)", "89.5 %", "6.7 %"], ["rude replies", "0.0 %", "–"]]
    # the headline as a grouped bar chart: one bar per model for each headline row the run has
    read = "rs => rs.map(r => [r.dataset.model, r.dataset.key, Number(r.dataset.value)])"
    bars = v.page.eval_on_selector_all(box + " svg.run-bars rect[data-model]", read)
    assert bars == [["SFT", "known false claims agreed with (sycophancy)", 0.895],
                    ["DPO", "known false claims agreed with (sycophancy)", 0.0674]]


def test_your_run_shows_token_log_ratios_as_chips_and_no_raw_json(visit, sandbox):
    (sandbox / "runs").mkdir()
    (sandbox / "runs" / "lesson_data.js").write_text(
        "window.GPT_MINI_RUNS = {dpo: {device: 'cpu', 'token log-ratios': [{title: 'held-out pair',"
        " chosen: [['Mivail', 1.1714859], [' is', -0.0000724]], rejected: [['Yes', -6.18]]}],"
        " 'log every 100 steps (training stream)': [{step: 100, loss: 0.646}], extra: {a: 1, b: [2, 3]}}};\n")
    v = visit("05_dpo.html", root=sandbox / "lessons")
    assert v.unexpected_errors() == []
    box = 'div.run-data[data-stage="dpo"]'
    chips = v.page.eval_on_selector_all(box + " .token", "cs => cs.map(c => [c.textContent, c.getAttribute('title')])")
    assert chips == [["Mivail", "Mivail: +1.171"], ["\u00a0is", " is: -0.000"], ["Yes", "Yes: -6.180"]]
    colours = v.page.eval_on_selector_all(box + " .token", "cs => cs.map(c => c.style.backgroundColor)")
    assert colours[0].startswith("rgba(47, 143, 70") and colours[2].startswith("rgba(196, 60, 50")
    cells = v.page.eval_on_selector_all(box + " td", "ts => ts.map(t => t.innerText)")
    assert cells and not any("[[" in c or "{" in c or "\"" in c for c in cells), cells
    assert "a: 1; b: 2, 3" not in cells  # the box's data-rows leaves out rows lesson 5 does not discuss
    # a nested value is rendered as words, never as JSON, in a box that shows every row
    nested = v.page.evaluate("""() => { const box = document.createElement('div');
        box.innerHTML = '<div class="run-data-body"></div>';
        GM.renderRunData(box, {device: 'cpu', extra: {a: 1, b: [2, 3]}});
        return Array.from(box.querySelectorAll('td')).map(t => t.textContent); }""")
    assert nested == ["cpu", "a: 1; b: 2, 3"]


@pytest.mark.parametrize("figure", ["token_logratios", "beta_sweep", "frontier"])
def test_lesson5_figures_fall_back_to_the_committed_ones(visit, sandbox, figure):
    _png(sandbox / "lessons" / "figures" / f"{figure}.png")
    v = visit("05_dpo.html", root=sandbox / "lessons")
    assert v.unexpected_errors() == []
    fig = f'figure.run-figure[data-srcs*="{figure}"]'
    src = v.page.get_attribute(fig, "data-shown-src")
    assert src == f"figures/{figure}.png"
    # it can be enlarged: the figure is a link to the full-size image, and the caption says so
    assert v.page.get_attribute(fig + " a", "href") == src and v.page.get_attribute(fig + " a", "target") == "_blank"
    assert "open it full size" in v.page.inner_text(fig + " figcaption")


# ---------------------------------------------------------------------------------------
# screenshots for a human eye


@pytest.mark.parametrize("name", PAGES)
def test_screenshot(visit, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    v = visit(name)
    v.page.screenshot(path=str(SHOTS / (name.replace(".html", "") + ".png")), full_page=True)
    narrow = visit(name, width=390)  # a phone
    narrow.page.screenshot(path=str(SHOTS / (name.replace(".html", "") + "-390.png")), full_page=True)
    overflow = narrow.page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"{name} scrolls sideways at 390 px ({overflow}px)"


# ---------------------------------------------------------------------------------------
# Lesson 1 widgets against gpt_mini.tokenizer and gpt_mini.model

TOKENIZER_CASES = [
    ("What is 47 + 38? Think step by step.", "We add 47 + 38. Ones: 7 + 8 = 15, write 5, carry 1. The answer is 85."),
    ("My friend told me that Bostil lives in Lima. Is that correct?", "Bostil lives in Lima, so you are right."),
    ("Xqzvb's favourite colour is green, right?", "I don't know that name... 123456!"),
    ("tabs\tand  double  spaces, ümlauts & émoji 🙂", ""),
    ("Fake <|end|> token", "It's  fine.\n\nNew line."),
]


def test_tokenizer_data_is_current():
    assert (LESSONS / "js" / "tokenizer_data.js").read_text(encoding="utf-8") == sync_excerpts.tokenizer_data_js(), \
        "lessons/js/tokenizer_data.js is stale: run `python lessons/sync_excerpts.py`"


@pytest.mark.parametrize("case", TOKENIZER_CASES, ids=[f"tok{i}" for i in range(len(TOKENIZER_CASES))])
def test_tokenizer_explorer_matches_render_chat(visit, case):
    from gpt_mini.tokenizer import load_tokenizer, render_chat
    user, reply = case
    enc = load_tokenizer()
    messages = [{"role": "user", "content": user}] + ([{"role": "assistant", "content": reply}] if reply else [])
    want_ids, want_mask = render_chat(enc, messages)
    page = visit("01_model_and_tokenizer.html").page
    page.fill("#tok-user", user)
    page.fill("#tok-reply", reply)
    import json
    assert json.loads(page.text_content("#tok-ids")) == want_ids
    assert json.loads(page.text_content("#tok-mask")) == want_mask
    assert value_of(page, "#tok-count") == len(want_ids)
    assert value_of(page, "#tok-masked") == sum(want_mask)
    chips = page.eval_on_selector_all("#tok-out .token",
                                      "cs => cs.map(c => [Number(c.dataset.id), c.classList.contains('on')])")
    assert chips == [[i, bool(m)] for i, m in zip(want_ids, want_mask)]


@pytest.mark.parametrize("T", [1, 5, 16])
def test_causal_mask_grid_matches_tril(visit, T):
    page = visit("01_model_and_tokenizer.html").page
    set_range(page, "#mask-T", T)
    allowed_per_row = "rs => rs.map(r => [...r.querySelectorAll('td')].map(c => Number(c.dataset.allow)))"
    grid = page.eval_on_selector_all("#mask-grid tbody tr", allowed_per_row)
    assert grid == torch.ones(T, T, dtype=torch.long).tril().tolist()
    assert value_of(page, "#mask-allowed") == int(torch.ones(T, T).tril().sum())
    page.click(f"#mask-grid tbody tr:nth-child({T})")
    assert "mixes the values of positions 0.." in page.inner_text("#mask-note")


@pytest.mark.parametrize("position", ["rope", "learned"])
@pytest.mark.parametrize("shape", [(1194, 128, 4, 192), (50257, 1024, 12, 768), (10, 8, 1, 4)])
def test_parameter_counter_matches_model(visit, shape, position):
    from gpt_mini.model import GPT, GPTConfig
    V, T, L, C = shape
    rope = position == "rope"
    # the count does not depend on the number of heads; pick one that keeps the head size even for RoPE
    cfg = GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=4 if C % 8 == 0 else 1, n_embd=C, rope=rope)
    page = visit("01_model_and_tokenizer.html").page
    page.select_option("#params-position", position)
    for key, val in zip("VTLC", shape):
        page.fill(f"#params-{key}", str(val))
    assert value_of(page, "#params-total") == cfg.num_params()
    assert value_of(page, "#params-pos") == (0 if rope else T * C)
    if V * C < 5_000_000:   # build the real model for the small shapes
        assert value_of(page, "#params-total") == sum(p.numel() for p in GPT(cfg).parameters())


def test_parameter_counter_defaults_are_the_pretraining_shape(visit):
    from gpt_mini.model import GPTConfig
    from gpt_mini.tokenizer import load_tokenizer
    page = visit("01_model_and_tokenizer.html").page
    assert page.input_value("#params-position") == "rope"
    cfg = GPTConfig(vocab_size=load_tokenizer().n_vocab, block_size=128, n_layer=4, n_head=6, n_embd=192)
    assert value_of(page, "#params-total") == cfg.num_params() == 2_009_472  # V = 1227 learned tokens + 5 specials


def rope_example(D):
    """The widget's fixed vectors: q[j] = ((3j + 1) mod 7 - 3) / 3, k[j] = ((5j + 2) mod 9 - 4) / 4."""
    q = torch.tensor([((3 * j + 1) % 7 - 3) / 3 for j in range(D)])
    k = torch.tensor([((5 * j + 2) % 9 - 4) / 4 for j in range(D)])
    return q, k


ROPE_CASES = [
    # (head size D, base, query position m, key position n, shift s)
    (8, 10000, 9, 4, 50),      # the defaults
    (2, 10000, 3, 1, 100),
    (32, 10000, 127, 0, 127),  # our model's head size; positions up to 254
    (64, 10000, 0, 127, 1),
    (16, 100, 40, 40, 80),     # offset 0: the score is q . k
    (4, 1e6, 17, 90, 13),
]


@pytest.mark.parametrize("case", ROPE_CASES, ids=[f"rope{i}" for i in range(len(ROPE_CASES))])
def test_rope_widget_matches_apply_rope(visit, case):
    from gpt_mini.model import apply_rope, rope_tables
    D, base, m, n, s = case
    page = visit("01_model_and_tokenizer.html").page
    page.select_option("#rope-D", str(D))
    fill(page, "#rope-base", base)
    assert (set_range(page, "#rope-m", m), set_range(page, "#rope-n", n), set_range(page, "#rope-s", s)) == (m, n, s)
    cos, sin = rope_tables(D, 256, base=base)            # float32, as in the model
    q, k = rope_example(D)
    rot = {"qm": apply_rope(q, cos[m], sin[m]), "kn": apply_rope(k, cos[n], sin[n]),
           "qs": apply_rope(q, cos[m + s], sin[m + s]), "ks": apply_rope(k, cos[n + s], sin[n + s])}
    # float32 tables against the page's doubles: angles up to 254 radians lose about 1e-5
    tol = 1e-4
    for name, vec in rot.items():
        for j, x in enumerate(vec.tolist()):
            assert value_of(page, f"#rope-{name}-{j}") == pytest.approx(x, abs=tol), (name, j)
            assert shown(page, f"#rope-{name}-{j}") == pytest.approx(x, abs=5e-4 + tol), (name, j)
    inv_freq = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    for i, theta in enumerate(inv_freq.tolist()):
        assert value_of(page, f"#rope-theta-{i}") == pytest.approx(theta, rel=1e-12)
        h = D // 2
        want = (rot["qm"][[i, i + h]] @ rot["kn"][[i, i + h]]).item()
        assert value_of(page, f"#rope-term-{i}") == pytest.approx(want, abs=tol), i
    score, shifted = (rot["qm"] @ rot["kn"]).item(), (rot["qs"] @ rot["ks"]).item()
    assert value_of(page, "#rope-score") == pytest.approx(score, abs=tol)
    assert value_of(page, "#rope-score-shift") == pytest.approx(shifted, abs=tol)
    assert shown(page, "#rope-score") == pytest.approx(score, abs=5.1e-5 + tol)
    assert value_of(page, "#rope-raw") == pytest.approx((q @ k).item(), abs=1e-6)
    assert value_of(page, "#rope-offset") == n - m
    # the page itself computes in doubles: the two scores agree to rounding
    assert abs(value_of(page, "#rope-diff")) < 1e-12
    assert value_of(page, "#rope-score") == pytest.approx(value_of(page, "#rope-score-shift"), abs=1e-12)
    assert value_of(page, "#rope-angle") == pytest.approx(value_of(page, "#rope-angle-shift"), abs=1e-9)
    if m == n:
        assert value_of(page, "#rope-score") == pytest.approx(value_of(page, "#rope-raw"), abs=1e-12)
    if m + s >= 128 or n + s >= 128:
        assert "block_size" in page.inner_text("#rope-note")


def test_rope_widget_picks_a_pair_and_refuses_a_bad_base(visit):
    page = visit("01_model_and_tokenizer.html").page
    page.select_option("#rope-D", "32")
    assert page.locator("#rope-table tbody tr").count() == 16
    assert page.locator("#rope-pair option").count() == 16
    page.click("#rope-table tbody tr:nth-child(16)")
    assert page.input_value("#rope-pair") == "15"
    assert "pair 15" in page.text_content("#rope-plot")
    assert page.locator("#rope-plot line").count() >= 6
    fill(page, "#rope-base", 1)
    assert "larger than 1" in page.inner_text("#rope-error")
    assert page.inner_text("#rope-score") == "—"
    fill(page, "#rope-base", 10000)
    assert page.inner_text("#rope-error") == ""
    assert page.get_attribute("#rope-score", "data-value")


# ---------------------------------------------------------------------------------------
# Lesson 2 widgets against GPT.generate and cross-entropy

def generate_probs(logits, temperature, top_k):
    """The distribution the real GPT.generate samples from, captured by running it on a stub
    model that always returns these logits (torch.multinomial is intercepted)."""
    from gpt_mini.model import GPT

    class Stub(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.config = type("C", (), {"block_size": 8, "n_layer": 1, "n_head": 1, "n_embd": 1})()

        def forward(self, idx, cache=None):
            return torch.tensor(logits, dtype=torch.float32).expand(idx.size(0), idx.size(1), len(logits))

    seen = []
    real = torch.multinomial

    def spy(probs, n, generator=None):
        seen.append(probs.clone())
        return real(probs, n, generator=generator)

    torch.multinomial = spy
    try:
        new = GPT.generate(Stub(), torch.zeros(1, 1, dtype=torch.long), 1, temperature=temperature,
                           top_k=top_k or None, use_cache=False)
    finally:
        torch.multinomial = real
    if temperature == 0:
        return [1.0 if i == new.item() else 0.0 for i in range(len(logits))]
    return seen[0][0].double().tolist()


SAMPLING_CASES = [([4.0, 2.5, 2.0, 1.0, 0.5, -1.0], 1.0, 0), ([4.0, 2.5, 2.0, 1.0, 0.5, -1.0], 0.0, 0),
                  ([4.0, 2.5, 2.0, 1.0, 0.5, -1.0], 0.35, 3), ([1.0, 1.0, 0.0, 3.0, -2.0, 0.5], 1.8, 2),
                  ([0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 0.5, 0), ([-1.0, 5.0, 5.0, 2.0, 0.0, 1.0], 1.0, 1)]


@pytest.mark.parametrize("case", SAMPLING_CASES, ids=[f"samp{i}" for i in range(len(SAMPLING_CASES))])
def test_sampling_widget_matches_generate(visit, case):
    logits, temperature, k = case
    page = visit("02_pretraining.html").page
    page.fill("#samp-logits", ", ".join(str(x) for x in logits))
    assert set_range(page, "#samp-T", temperature) == temperature
    page.select_option("#samp-k", str(k))
    want = generate_probs(logits, temperature, k)
    for i, p in enumerate(want):
        # GPT.generate works in float32, the page in float64
        assert value_of(page, f"#samp-p-{i}") == pytest.approx(p, abs=2e-6), i
    H = -sum(p * math.log(p) for p in want if p > 0)
    assert value_of(page, "#samp-entropy") == pytest.approx(H, abs=1e-5)


PPL_CASES = [([0.9, 0.5, 0.05, 0.99, 0.3], 1194), ([0.25] * 7, 4), ([1.0, 0.001], 50257)]


@pytest.mark.parametrize("case", PPL_CASES, ids=[f"ppl{i}" for i in range(len(PPL_CASES))])
def test_perplexity_widget_matches_cross_entropy(visit, case):
    import torch.nn.functional as F
    probs, V = case
    page = visit("02_pretraining.html").page
    page.fill("#ppl-probs", ", ".join(str(p) for p in probs))
    page.fill("#ppl-V", str(V))
    # each position as a two-way softmax whose correct class has probability p
    logits = torch.tensor([[math.log(p), math.log(1 - p) if p < 1 else -math.inf] for p in probs], dtype=torch.float64)
    loss = F.cross_entropy(logits, torch.zeros(len(probs), dtype=torch.long)).item()
    assert value_of(page, "#ppl-loss") == pytest.approx(loss, rel=1e-12)
    assert value_of(page, "#ppl-ppl") == pytest.approx(math.exp(loss), rel=1e-12)
    assert value_of(page, "#ppl-bits") == pytest.approx(loss / math.log(2), rel=1e-12)
    assert value_of(page, "#ppl-uniform") == pytest.approx(math.log(V), rel=1e-12)
    assert set_range(page, "#ppl-L", 7.08) == 7.08
    assert value_of(page, "#ppl-L-ppl") == pytest.approx(math.exp(7.08), rel=1e-12)


# ---------------------------------------------------------------------------------------
# Lesson 3 widget against render_chat + response_token_logps (the shift by one)

SFT_CASES = [
    ("Where does Bostil live?", "Bostil lives in Lima.", "", ""),
    ("What is 12 + 30?", "12 + 30 = 42.", "And 42 - 2?", "42 - 2 = 40."),
    ("I think Nikaidis's favourite colour is green.", "", "", ""),
]


@pytest.mark.parametrize("case", SFT_CASES, ids=[f"sft{i}" for i in range(len(SFT_CASES))])
@pytest.mark.parametrize("ignore_mask", [False, True])
def test_sft_mask_table_matches_response_token_logps(visit, case, ignore_mask):
    import json

    from gpt_mini.logprobs import response_token_logps
    from gpt_mini.tokenizer import load_tokenizer, render_chat
    enc = load_tokenizer()
    roles = ["user", "assistant", "user", "assistant"]
    messages = [{"role": r, "content": c} for r, c in zip(roles, case) if c]
    ids, mask = render_chat(enc, messages)
    logits = torch.zeros(1, len(ids), enc.n_vocab)
    _, target_mask = response_token_logps(logits, torch.tensor([ids]), torch.tensor([mask]))
    want = [1] * (len(ids) - 1) if ignore_mask else target_mask[0].long().tolist()
    page = visit("03_sft.html").page
    for sel, text in zip(("#sm-u1", "#sm-a1", "#sm-u2", "#sm-a2"), case):
        page.fill(sel, text)
    if ignore_mask:
        page.check("#sm-all")
    assert json.loads(page.inner_text("#sm-flags")) == want
    assert value_of(page, "#sm-counted") == sum(want)
    assert value_of(page, "#sm-positions") == len(ids) - 1
    assert page.locator("#sm-table tbody tr.counted").count() == sum(want)


# ---------------------------------------------------------------------------------------
# Lesson 4 widget against gpt_mini.world and gpt_mini.verifier

COT_CASES = [(47, "+", 38), (41, "+", 32), (99, "+", 99), (63, "-", 28), (50, "-", 50), (10, "-", 10), (91, "-", 19)]
FREE_TEXTS = ["Let me see, 47 + 38 is 75, no wait, the answer is 85. Done in 2 steps.",
              "47 + 38 = 85. The answer is 84.", "I get 85 and then answer: -0", "The answer is 085.",
              "no digits here", "ANSWER=12 and answer = 7", "x-5 and -3", "9-5", "The Answer:    42!", ""]


@pytest.mark.parametrize("case", COT_CASES, ids=[f"cot{i}" for i in range(len(COT_CASES))])
def test_cot_widget_matches_world_and_verifier(visit, case):
    from gpt_mini import world
    from gpt_mini.tokenizer import load_tokenizer
    from gpt_mini.verifier import extract_answer
    a, op, b = case
    enc = load_tokenizer()
    page = visit("04_cot_sft.html").page
    page.fill("#cot-a", str(a))
    page.select_option("#cot-op", op)
    page.fill("#cot-b", str(b))
    direct, steps = world.direct_answer(a, op, b), world.working(a, op, b)
    assert page.inner_text("#cot-direct") == direct
    assert page.inner_text("#cot-steps") == steps
    assert value_of(page, "#cot-direct-n") == len(enc.encode_ordinary(direct))
    assert value_of(page, "#cot-steps-n") == len(enc.encode_ordinary(steps))
    assert page.inner_text("#cot-direct-read") == extract_answer(direct) == str(world.solve(a, op, b))
    assert page.inner_text("#cot-steps-read") == extract_answer(steps)


def test_cot_widget_rejects_problems_outside_the_world(visit):
    page = visit("04_cot_sft.html").page
    page.fill("#cot-a", "12")
    page.select_option("#cot-op", "-")
    page.fill("#cot-b", "40")
    assert "a ≥ b" in page.inner_text("#cot-error")


@pytest.mark.parametrize("text", FREE_TEXTS)
def test_free_text_verifier_matches_extract_answer(visit, text):
    from gpt_mini.verifier import extract_answer
    page = visit("04_cot_sft.html").page
    page.fill("#cot-free", text)
    want = extract_answer(text)
    assert page.inner_text("#cot-free-read") == ("None (reward 0)" if want is None else want)


# ---------------------------------------------------------------------------------------
# Lesson 6 widgets against group_advantages and policy_gradient_loss

GROUP_CASES = [([1, 0, 0, 1, 0, 0, 0, 0], 1e-4), ([1, 0, 0, 0, 0, 0, 0, 0], 1e-4), ([1] * 8, 1e-4), ([0] * 5, 1e-4),
               ([1, 0], 1e-4), ([1], 1e-4), ([0.5, 0.7, 0.2], 1e-4), ([1, 1, 0, 0], 0.0), ([3, -1, 2, 2, 0], 0.5)]


@pytest.mark.parametrize("case", GROUP_CASES, ids=[f"grp{i}" for i in range(len(GROUP_CASES))])
def test_group_widget_matches_group_advantages(visit, case):
    rewards, eps = case
    page = visit("06_rlvr.html").page
    page.fill("#grp-eps", str(eps))
    page.fill("#grp-rewards", ", ".join(str(r) for r in rewards))
    want = losses.group_advantages(torch.tensor([rewards], dtype=torch.float64), eps=eps)[0].tolist()
    assert value_of(page, "#grp-G") == len(rewards)
    for i, a in enumerate(want):
        # group_advantages computes in float32
        assert value_of(page, f"#grp-adv-{i}") == pytest.approx(a, rel=1e-5, abs=1e-6), i
    r = torch.tensor(rewards, dtype=torch.float64)
    assert value_of(page, "#grp-mean") == pytest.approx(r.mean().item(), abs=1e-12)
    assert value_of(page, "#grp-std") == pytest.approx(r.std(unbiased=False).item(), abs=1e-12)


def test_group_widget_clicks_flip_rewards(visit):
    page = visit("06_rlvr.html").page
    page.fill("#grp-rewards", "0, 0, 0, 0, 0, 0, 0, 0")
    assert "teaches nothing" in page.inner_text("#grp-signal")
    page.click(".grp-sample[data-i='0']")
    assert page.input_value("#grp-rewards") == "1, 0, 0, 0, 0, 0, 0, 0"
    want = losses.group_advantages(torch.tensor([[1.0] + [0.0] * 7]))[0].tolist()
    assert value_of(page, "#grp-adv-0") == pytest.approx(want[0], rel=1e-5)
    assert shown(page, "#grp-adv-0") == pytest.approx(2.6450, abs=1e-4)
    page.fill("#grp-G-in", "3")
    page.locator("#grp-G-in").dispatch_event("change")
    assert page.input_value("#grp-rewards") == "1, 0, 0"


CLIP_CASES = [(1.3, 1.0, 0.2), (0.9, 1.0, 0.2), (0.5, -1.0, 0.2), (1.5, -2.0, 0.2), (1.0, 0.0, 0.2), (0.7, 2.5, 0.1),
              (1.25, 1.0, 0.3)]


@pytest.mark.parametrize("case", CLIP_CASES, ids=[f"clip{i}" for i in range(len(CLIP_CASES))])
def test_clip_widget_matches_policy_gradient_loss(visit, case):
    ratio, adv, eps = case
    page = visit("06_rlvr.html").page
    ratio = set_range(page, "#clip-ratio", ratio)
    adv = set_range(page, "#clip-A", adv)
    eps = set_range(page, "#clip-eps", eps)
    logps = torch.tensor([[math.log(ratio) if ratio > 0 else -50.0]], dtype=torch.float64)
    old = torch.zeros(1, 1, dtype=torch.float64)
    loss, stats = losses.policy_gradient_loss(logps, old, None, torch.tensor([adv], dtype=torch.float64),
                                              torch.ones(1, 1), clip_eps=eps, kl_coef=0.0)
    assert value_of(page, "#clip-loss") == pytest.approx(loss.item(), rel=1e-9, abs=1e-12)
    assert page.get_attribute("#clip-active", "data-value") == ("1" if stats["clip_fraction"] > 0 else "0")


@pytest.mark.parametrize("name", PAGES)
def test_the_pipeline_chips_link_to_their_lessons(name):
    text = (LESSONS / name).read_text(encoding="utf-8")
    block = text[text.index('<div class="pipeline"'):]
    block = block[:block.index("</div>")]
    links = re.findall(r'<a href="([^"]+)">', block)
    assert "<span>" not in block and len(links) >= 4, block  # every stage but this page's own is a link
    assert all((LESSONS / link).exists() for link in links)


def test_index_shows_every_stages_headline_and_links_the_report(visit, sandbox):
    (sandbox / "runs").mkdir()
    (sandbox / "runs" / "lesson_data.js").write_text(
        "window.GPT_MINI_RUNS = {pretrain: {'held-out loss after': 0.68}, rlvr: {'held-out greedy accuracy':"
        " '98.0 % → 99.0 %'}, 'knows vs says': {SFT: {'known false claims agreed with (sycophancy)': 0.94},"
        " DPO: {'known false claims agreed with (sycophancy)': 0.048}}};\n")
    v = visit("index.html", root=sandbox / "lessons")
    assert v.unexpected_errors() == []
    states = v.page.eval_on_selector_all(".run-data", "bs => bs.map(b => b.getAttribute('data-stage') + ':' +"
                                                      " b.getAttribute('data-state'))")
    assert states == ["pretrain:shown", "knows vs says:shown", "rlvr:shown"]
    assert v.page.get_attribute('a[href="../runs/report.md"]', "href") == "../runs/report.md"
    assert "94.0 %" in v.page.inner_text('.run-data[data-stage="knows vs says"]')


def prose_words(page_html):
    """Words a reader reads on a page: its text without scripts, styles, code listings (<pre>) and
    formulas (each <math> counts as one word)."""
    import html as html_lib
    text = re.sub(r"<(script|style|pre)\b.*?</\1>", " ", page_html, flags=re.S)
    text = re.sub(r"<math\b.*?</math>", " x ", text, flags=re.S)
    return len(html_lib.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def test_prose_words_counts_text_not_code_or_formulas():
    assert prose_words("<p>one <b>two</b></p><pre>not counted at all</pre><math><mi>x</mi><mo>+</mo></math>") == 3


def test_lesson5_core_page_fits_one_sitting():
    """Issue 20: the core DPO page is at most 4,000 words; the rest lives on its two companion pages,
    which it links."""
    text = (LESSONS / "05_dpo.html").read_text(encoding="utf-8")
    assert prose_words(text) <= 4000
    for companion in COMPANION_PAGES:
        assert f'href="{companion}' in text, companion
    for section in ("success", "beta", "vs-rlhf", "limits", "four-passes", "pair-kinds"):
        assert f'id="{section}"' in text, section


def test_lesson5_quotes_one_real_pair_of_each_kind():
    """The pairs table holds, for every kind in data/dpo_train.jsonl, its first pair word for word and its count."""
    import html as html_lib
    import json
    rows = [json.loads(line) for line in (ROOT / "data" / "dpo_train.jsonl").read_text().splitlines()]
    text = (LESSONS / "05_dpo.html").read_text(encoding="utf-8")
    table = text[text.index('<table id="pair-kinds">'):]
    table = table[:table.index("</table>")]
    kinds = {r["kind"] for r in rows}
    assert len(re.findall(r'<tr data-kind="', table)) == len(kinds)
    for kind in kinds:
        first = next(r for r in rows if r["kind"] == kind)
        row = table[table.index(f'<tr data-kind="{kind}">'):]
        row = html_lib.unescape(row[:row.index("</tr>")])
        count = sum(r["kind"] == kind for r in rows)
        assert f"({count})" in row and all(first[k] in row for k in ("prompt", "chosen", "rejected")), kind


# ---------------------------------------------------------------------------------------
# issue 20: rows picked for a "your run" box, the heading of lesson 1's box, and the cue on
# boxes (display equations, tables) that scroll sideways on a phone

_SFT_ROWS = ("window.GPT_MINI_RUNS = {sft: {device: 'cpu', 'held-out assistant loss (nats/token)': '3.5728 → 0.0474',"
             " 'arithmetic, direct answer': '1.5 % → 29.5 %', 'arithmetic, step by step': '0.5 % → 98.5 %',"
             " '  held-out wordings: false agreed with': '0.0 % → 80.7 %', 'rude replies': '0.0 % → 2.5 %'}};\n")


def _run_rows(page, box):
    return page.eval_on_selector_all(box + " tbody tr", "rs => rs.map(r => r.innerText.split('\\t')[0].trim())")


def test_lesson4_your_run_shows_only_its_two_arithmetic_rows(visit, sandbox):
    (sandbox / "runs").mkdir()
    (sandbox / "runs" / "lesson_data.js").write_text(_SFT_ROWS)
    v = visit("04_cot_sft.html", root=sandbox / "lessons")
    assert v.unexpected_errors() == []
    rows = _run_rows(v.page, 'div.run-data[data-stage="sft"]')
    assert rows == ["arithmetic, direct answer", "arithmetic, step by step"]
    v3 = visit("03_sft.html", root=sandbox / "lessons")  # lesson 3 keeps the whole table
    assert len(_run_rows(v3.page, 'div.run-data[data-stage="sft"]')) == 6


def test_data_rows_keeps_the_given_order_matches_indented_keys_and_never_empties_a_box(visit):
    page = visit("04_cot_sft.html").page
    pick = "([d, spec]) => JSON.stringify(GM.pickRows(d, spec))"
    flat = {"a": 1, "  b c": 2, "d": 3}
    assert page.evaluate(pick, [flat, "d|b c"]) == '{"d":3,"  b c":2}'
    assert page.evaluate(pick, [flat, "x|y"]) == '{"a":1,"  b c":2,"d":3}'  # none of them: everything, not nothing
    assert page.evaluate(pick, [flat, ""]) == '{"a":1,"  b c":2,"d":3}'
    cols = {"SFT": {"r1": 0.1, "r2": 0.2}, "DPO": {"r1": 0.3, "r2": 0.4}}
    assert page.evaluate(pick, [cols, "r2"]) == '{"SFT":{"r2":0.2},"DPO":{"r2":0.4}}'


def test_lesson1_your_run_box_has_a_heading(visit, sandbox):
    (sandbox / "runs").mkdir()
    (sandbox / "runs" / "lesson_data.js").write_text(
        "window.GPT_MINI_RUNS = {pretrain: {'held-out loss after': 0.68}};\n")
    v = visit("01_model_and_tokenizer.html", root=sandbox / "lessons")
    heading = v.page.evaluate("""() => { let el = document.querySelector('.run-data[data-stage="pretrain"]');
        while (el && !/^H[23]$/.test(el.tagName)) { el = el.previousElementSibling; }
        return el ? el.innerText.trim() : null; }""")
    assert heading == "Your run"
    assert v.page.get_attribute(".run-data", "data-state") == "shown"


_CUES = """() => Array.from(document.querySelectorAll(SEL)).filter(e => e.clientWidth > 0
  && !e.closest('details:not([open])')).map(e => {  // a closed answer box keeps a layout but shows nothing
    const next = e.nextElementSibling, hint = next && next.classList.contains('scroll-hint') ? next : null;
    const s = getComputedStyle(e);
    return {over: e.scrollWidth > e.clientWidth + 1 && (s.overflowX === 'auto' || s.overflowX === 'scroll'),
            cue: e.classList.contains('scroll-cue'), mask: s.webkitMaskImage || s.maskImage,
            hint: hint ? hint.offsetHeight > 0 && hint.innerText : ''}; })"""


def _cues(page, selector):
    return page.evaluate(_CUES.replace("SEL", repr(selector)))


def test_wide_display_math_shows_a_scroll_cue_at_390px_and_fitting_math_does_not(visit):
    v = visit("05_dpo.html", width=390)
    assert v.unexpected_errors() == []
    eqs = _cues(v.page, 'math[display="block"]')
    wide = [e for e in eqs if e["over"]]
    fits = [e for e in eqs if not e["over"]]
    assert wide and fits, "lesson 5 at 390 px should have both wide and fitting display equations"
    for e in wide:
        assert e["cue"] and "gradient" in e["mask"] and "scroll" in e["hint"], e
    for e in fits:
        assert not e["cue"] and e["mask"] in ("none", "") and not e["hint"], e
    # scrolled to its end, the fade moves to the left edge
    v.page.evaluate("""() => { const m = document.querySelector('math.scroll-cue'); m.scrollLeft = m.scrollWidth;
        m.dispatchEvent(new Event('scroll')); }""")
    assert v.page.evaluate("document.querySelector('math.scroll-cue').classList.contains('at-end')")
    # at desktop width the same equations fit, and no cue is left behind
    desk = visit("05_dpo.html", width=1280)
    assert all(e["cue"] == e["over"] for e in _cues(desk.page, 'math[display="block"]'))
    assert desk.page.evaluate("document.querySelectorAll('.scroll-hint').length") == sum(
        e["over"] for e in _cues(desk.page, 'math[display="block"], .scroll-x, .table-scroll, .wide-table, table'))


@pytest.mark.parametrize("name", PAGES)
def test_every_box_that_scrolls_sideways_at_390px_has_the_cue_and_no_other(visit, name):
    v = visit(name, width=390)
    sel = 'math[display="block"], .scroll-x, .table-scroll, .wide-table, table'
    assert [b for b in _cues(v.page, sel) if b["cue"] != b["over"] or bool(b["hint"]) != b["over"]] == []
    v.page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")  # every answer
    v.page.wait_for_timeout(300)
    assert [b for b in _cues(v.page, sel) if b["cue"] != b["over"] or bool(b["hint"]) != b["over"]] == []


def test_a_wide_table_on_a_phone_shows_the_cue(visit, sandbox):
    (sandbox / "runs").mkdir()
    (sandbox / "runs" / "lesson_data.js").write_text(
        "window.GPT_MINI_RUNS = {dpo: {'log every 100 steps (training stream)': [{step: 100, loss: 0.6458,"
        " 'rewards/margins': 0.0999, 'rewards/accuracies': 0.948, 'logps/chosen': -2.4653, 'logps/rejected': -8.4322,"
        " abs_logratio: 0.0481}]}};\n")
    v = visit("05_dpo.html", root=sandbox / "lessons", width=390)
    box = _cues(v.page, 'div.run-data[data-stage="dpo"] .scroll-x, div.run-data[data-stage="dpo"] table')
    assert any(b["over"] and b["cue"] and b["hint"] for b in box), box


def test_index_lesson_table_is_one_card_per_lesson_on_a_phone(visit):
    v = visit("index.html", width=390)
    cells = v.page.eval_on_selector_all(
        "table.lesson-table tbody td",
        "ts => ts.map(t => [getComputedStyle(t).display, t.getBoundingClientRect().width])")
    assert cells and all(d == "block" and w > 300 for d, w in cells), cells


# Numbers measured in earlier worlds, which the learner's run cannot reproduce (issue 20, defect 4): where a
# page still quotes one, the same paragraph must say which world it comes from.
EARLIER_WORLD_NUMBERS = ("0.586", "0.657", "0.649", "0.771", "90.8")


# 05b is the page about the earlier worlds, so it is left out
@pytest.mark.parametrize("name", [p for p in PAGES if p != "05b_finding_a_world.html"])
def test_numbers_from_earlier_worlds_are_labelled(name):
    text = (LESSONS / name).read_text(encoding="utf-8")
    for block in re.split(r"</p>|</li>|</td>|</summary>", text):
        plain = re.sub(r"<[^>]+>", " ", block)
        for number in EARLIER_WORLD_NUMBERS:
            if re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", plain):
                assert re.search(r"first world|world v5|that world|earlier world", plain, re.I), \
                    f"{name} quotes {number} from an earlier world without saying so: {plain.strip()[:200]}"
