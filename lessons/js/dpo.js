/* Lesson 5 widgets: margin simulator, loss-curve figure, DPO loss calculator.
 * The formulas here are the ones stated on the page; tests/test_lessons.py recomputes them in Python.
 */
(function () {
  "use strict";
  var GM = window.GM;

  // ------------------------------------------------------------------
  // 1. Margin simulator: L = -log sigmoid(beta*(rho_w - rho_l)), minimised directly in the two
  //    log-ratios rho = log pi_theta - log pi_ref. The gradient is dL/drho_w = -beta*g, dL/drho_l = +beta*g
  //    with g = sigmoid(-beta*(rho_w - rho_l)). Two optimizers:
  //    - Adam, as 03_dpo.py trains (betas 0.9 and 0.95, eps 1e-8, no weight decay; gpt_mini/optim.py):
  //      m = b1*m + (1-b1)*grad;  v = b2*v + (1-b2)*grad^2;  rho -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)
  //    - plain gradient descent:  rho_w += lr*beta*g;  rho_l -= lr*beta*g
  // ------------------------------------------------------------------
  var ADAM = { b1: 0.9, b2: 0.95, eps: 1e-8 };
  var DEFAULT_LR = { adam: 0.05, sgd: 1 };
  function setupSimulator() {
    var root = document.getElementById("sim");
    if (!root) { return; }
    var betaIn = document.getElementById("sim-beta");
    var lrIn = document.getElementById("sim-lr");
    var optIn = document.getElementById("sim-opt");
    var st = null;
    var ghosts = []; // earlier runs, kept faint for comparison

    function beta() { return Number(betaIn.value); }
    function lr() { var v = Number(lrIn.value); return isFinite(v) && v > 0 ? v : DEFAULT_LR[optIn.value]; }
    function adamStep(param, grad, t, eta) {
      param.m = ADAM.b1 * param.m + (1 - ADAM.b1) * grad;
      param.v = ADAM.b2 * param.v + (1 - ADAM.b2) * grad * grad;
      var mHat = param.m / (1 - Math.pow(ADAM.b1, t)), vHat = param.v / (1 - Math.pow(ADAM.b2, t));
      return eta * mHat / (Math.sqrt(vHat) + ADAM.eps);
    }

    function step(n) {
      var b = beta(), eta = lr();
      for (var i = 0; i < n; i++) {
        var g = GM.sigmoid(-b * (st.rhoW - st.rhoL));
        if (optIn.value === "adam") {
          st.rhoW -= adamStep(st.adamW, -b * g, st.k + 1, eta);
          st.rhoL -= adamStep(st.adamL, b * g, st.k + 1, eta);
        } else {
          st.rhoW += eta * b * g;
          st.rhoL -= eta * b * g;
        }
        st.k += 1;
        st.history.push([st.k, b * (st.rhoW - st.rhoL)]);
        st.gaps.push([st.k, st.rhoW - st.rhoL]);
      }
      draw();
    }
    function reset(keepGhost) {
      if (keepGhost && st && st.k > 0) {
        ghosts.push({ beta: st.betaUsed, opt: st.opt, history: st.history.slice(), gaps: st.gaps.slice() });
        if (ghosts.length > 3) { ghosts.shift(); }
      }
      st = { rhoW: 0, rhoL: 0, k: 0, history: [[0, 0]], gaps: [[0, 0]], betaUsed: beta(), opt: optIn.value,
             adamW: { m: 0, v: 0 }, adamL: { m: 0, v: 0 } };
      draw();
    }
    function setBar(id, value, scale) {
      var fill = document.getElementById(id);
      var frac = Math.min(Math.abs(value) / scale, 1) * 50;
      fill.style.left = value >= 0 ? "50%" : (50 - frac) + "%";
      fill.style.width = frac + "%";
    }
    function draw() {
      var b = beta();
      st.betaUsed = b;
      var rw = b * st.rhoW, rl = b * st.rhoL, m = rw - rl;
      document.getElementById("sim-beta-val").textContent = b.toFixed(2);
      GM.setOut("sim-k", st.k, 0);
      GM.setOut("sim-rw", rw, 4, { signed: true });
      GM.setOut("sim-rl", rl, 4, { signed: true });
      GM.setOut("sim-margin", m, 4, { signed: true });
      GM.setOut("sim-gap", st.rhoW - st.rhoL, 4, { signed: true });
      GM.setOut("sim-loss", -GM.logSigmoid(m), 4);
      GM.setOut("sim-weight", GM.sigmoid(-m), 4);
      GM.setOut("sim-acc", m > 0 ? 100 : 0, 0, { suffix: "%" });
      var scale = Math.max(1, Math.abs(rw), Math.abs(rl)) * 1.15;
      setBar("sim-bar-w", rw, scale);
      setBar("sim-bar-l", rl, scale);
      document.getElementById("sim-bar-scale").textContent = "bar half-width = " + scale.toFixed(2);
      var kmax = Math.max(50, st.k);
      ghosts.forEach(function (gh) { kmax = Math.max(kmax, gh.history[gh.history.length - 1][0]); });
      plot("sim-plot", "history", kmax, b, "margin r̂w − r̂l");
      plot("sim-plot-gap", "gaps", kmax, b, "log-ratio gap ρw − ρl (nats)");
    }
    // one curve per run: the current one, and up to three earlier ones dashed grey
    function plot(id, key, kmax, b, ylabel) {
      var ymax = 2;
      st[key].forEach(function (p) { ymax = Math.max(ymax, p[1]); });
      ghosts.forEach(function (gh) { gh[key].forEach(function (p) { ymax = Math.max(ymax, p[1]); }); });
      ymax = Math.ceil(ymax);
      var series = ghosts.map(function (gh) {
        return { points: gh[key], color: "#7a7a7a", width: 1.5, dash: "5 3",
                 opacity: 0.7, label: "earlier β=" + gh.beta.toFixed(2) + " (" + gh.opt + ")" };
      });
      series.push({ points: st[key], color: "#2f6f8f", width: 2.5, label: "now β=" + b.toFixed(2) + " (" + st.opt + ")" });
      GM.linePlot(document.getElementById(id), series, {
        xmin: 0, xmax: kmax, ymin: -0.5, ymax: ymax,
        xticks: ticks(0, kmax, 5), yticks: ticks(0, ymax, 4),
        xlabel: "step", ylabel: ylabel
      });
    }
    function ticks(a, b, n) {
      var raw = (b - a) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
      var stepv = [1, 2, 5, 10].map(function (f) { return f * mag; }).filter(function (s) { return s >= raw; })[0];
      var out = [];
      for (var t = Math.ceil(a / stepv) * stepv; t <= b + 1e-9; t += stepv) { out.push(Math.round(t * 1e6) / 1e6); }
      return out;
    }
    betaIn.addEventListener("input", function () { reset(true); });
    lrIn.addEventListener("change", function () { reset(true); });
    optIn.addEventListener("change", function () { lrIn.value = DEFAULT_LR[optIn.value]; reset(true); });
    document.getElementById("sim-step").addEventListener("click", function () { step(1); });
    document.getElementById("sim-step10").addEventListener("click", function () { step(10); });
    document.getElementById("sim-step100").addEventListener("click", function () { step(100); });
    document.getElementById("sim-reset").addEventListener("click", function () { ghosts = []; reset(false); });
    reset(false);
  }

  // ------------------------------------------------------------------
  // 2. Loss against the log-ratio gap m (the margin before beta), for several beta, with label smoothing eps:
  //    loss(m) = (1 - eps) * (-log sigmoid(beta*m)) + eps * (-log sigmoid(-beta*m))
  // ------------------------------------------------------------------
  var CURVE_BETAS = [0.01, 0.1, 0.5, 1.0];
  var CURVE_COLORS = ["#8e6c8a", "#2f6f8f", "#c0792b", "#b23b3b"];
  function smoothedLoss(z, eps) {
    return (1 - eps) * -GM.logSigmoid(z) + eps * -GM.logSigmoid(-z);
  }
  function setupCurve() {
    var root = document.getElementById("curve");
    if (!root) { return; }
    var epsIn = document.getElementById("curve-eps");
    var mIn = document.getElementById("curve-m");
    function draw() {
      var eps = Number(epsIn.value), m = Number(mIn.value);
      document.getElementById("curve-eps-val").textContent = eps.toFixed(2);
      document.getElementById("curve-m-val").textContent = m.toFixed(1);
      var series = CURVE_BETAS.map(function (b, i) {
        var pts = [];
        for (var x = -20; x <= 20.0001; x += 0.25) { pts.push([x, smoothedLoss(b * x, eps)]); }
        return { points: pts, color: CURVE_COLORS[i], width: 2, label: "β = " + b };
      });
      GM.linePlot(document.getElementById("curve-plot"), series, {
        xmin: -20, xmax: 20, ymin: 0, ymax: 3,
        xticks: [-20, -10, 0, 10, 20], yticks: [0, 0.5, 1, 1.5, 2, 2.5, 3],
        xlabel: "log-ratio gap m = (log πθ(yw) − log πref(yw)) − (log πθ(yl) − log πref(yl))",
        ylabel: "loss", marker: { x: m }
      });
      CURVE_BETAS.forEach(function (b, i) {
        GM.setOut("curve-loss-" + i, smoothedLoss(b * m, eps), 4);
        GM.setOut("curve-grad-" + i, gradAt(b, m, eps), 4);
      });
    }
    // d loss / d m for the smoothed loss: beta * ( -(1-eps)*sigmoid(-beta m) + eps*sigmoid(beta m) )
    function gradAt(b, m, eps) {
      return b * (-(1 - eps) * GM.sigmoid(-b * m) + eps * GM.sigmoid(b * m));
    }
    epsIn.addEventListener("input", draw);
    mIn.addEventListener("input", draw);
    draw();
  }

  // ------------------------------------------------------------------
  // 3. DPO loss calculator on a small batch of summed log-probs.
  // ------------------------------------------------------------------
  function setupCalculator() {
    var root = document.getElementById("calc");
    if (!root) { return; }
    var ids = ["calc-pc", "calc-pr", "calc-rc", "calc-rr", "calc-beta", "calc-eps"];
    function compute() {
      var pc = GM.parseVector(document.getElementById("calc-pc").value);
      var pr = GM.parseVector(document.getElementById("calc-pr").value);
      var rc = GM.parseVector(document.getElementById("calc-rc").value);
      var rr = GM.parseVector(document.getElementById("calc-rr").value);
      var beta = Number(document.getElementById("calc-beta").value);
      var eps = Number(document.getElementById("calc-eps").value);
      var err = document.getElementById("calc-error");
      var outs = ["calc-loss", "calc-acc", "calc-rch", "calc-rrj", "calc-margin", "calc-lpc", "calc-lpr", "calc-smooth"];
      if (!pc || !pr || !rc || !rr || !pc.length || pc.length !== pr.length || pc.length !== rc.length || pc.length !== rr.length
          || !isFinite(beta) || beta <= 0 || !isFinite(eps) || eps < 0 || eps >= 0.5) {
        err.textContent = "Need four lists of the same length (numbers separated by commas), β > 0 and 0 ≤ ε < 0.5.";
        outs.forEach(function (o) { GM.setOut(o, null); });
        document.getElementById("calc-table").innerHTML = "";
        return;
      }
      err.textContent = "";
      var n = pc.length, rows = [], losses = [], smooth = [], chosenR = [], rejectedR = [], correct = 0;
      for (var i = 0; i < n; i++) {
        var rcw = beta * (pc[i] - rc[i]);   // implicit reward of the chosen answer
        var rrl = beta * (pr[i] - rr[i]);   // implicit reward of the rejected answer
        var z = rcw - rrl;
        chosenR.push(rcw); rejectedR.push(rrl);
        losses.push(-GM.logSigmoid(z));
        smooth.push(smoothedLoss(z, eps));
        if (rcw > rrl) { correct += 1; }   // a tie counts as wrong
        rows.push([i, rcw, rrl, z, -GM.logSigmoid(z), rcw > rrl]);
      }
      GM.setOut("calc-loss", GM.mean(losses), 4);
      GM.setOut("calc-acc", 100 * correct / n, 1, { suffix: "%" });
      GM.setOut("calc-rch", GM.mean(chosenR), 4, { signed: true });
      GM.setOut("calc-rrj", GM.mean(rejectedR), 4, { signed: true });
      GM.setOut("calc-margin", GM.mean(chosenR) - GM.mean(rejectedR), 4, { signed: true });
      GM.setOut("calc-lpc", GM.mean(pc), 4);
      GM.setOut("calc-lpr", GM.mean(pr), 4);
      GM.setOut("calc-smooth", GM.mean(smooth), 4);
      document.getElementById("calc-eps-echo").textContent = eps.toFixed(2);
      var html = "<thead><tr><th class=\"num\">pair</th><th class=\"num\">r̂(chosen)</th><th class=\"num\">r̂(rejected)</th>" +
        "<th class=\"num\">margin</th><th class=\"num\">loss</th><th>ranked right?</th></tr></thead><tbody>";
      rows.forEach(function (r) {
        html += "<tr><td class=\"num\">" + r[0] + "</td><td class=\"num\">" + r[1].toFixed(4) + "</td><td class=\"num\">" +
          r[2].toFixed(4) + "</td><td class=\"num\">" + r[3].toFixed(4) + "</td><td class=\"num\">" + r[4].toFixed(4) +
          "</td><td>" + (r[5] ? "yes" : (r[3] === 0 ? "tie → counted wrong" : "no")) + "</td></tr>";
      });
      document.getElementById("calc-table").innerHTML = html + "</tbody>";
    }
    ids.forEach(function (id) { document.getElementById(id).addEventListener("input", compute); });
    document.getElementById("calc-go").addEventListener("click", compute);
    document.getElementById("calc-reset").addEventListener("click", function () {
      ids.forEach(function (id) { var el = document.getElementById(id); el.value = el.defaultValue; });
      compute();
    });
    compute();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupSimulator();
    setupCurve();
    setupCalculator();
  });
})();
