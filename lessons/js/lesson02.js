/* Lesson 2 widgets: sampling temperature / top-k, and loss -> perplexity. */
(function () {
  "use strict";
  var GM = window.GM;

  // Probabilities GPT.generate samples from: greedy at temperature 0, else
  // softmax(logits / T) after dropping every logit below the k-th largest (top-k).
  function nextTokenProbs(logits, T, k) {
    var n = logits.length, i;
    if (T === 0) {
      var best = 0;
      for (i = 1; i < n; i++) { if (logits[i] > logits[best]) { best = i; } }
      return logits.map(function (_, j) { return j === best ? 1 : 0; });
    }
    var z = logits.map(function (l) { return l / T; });
    if (k && k < n) {
      var kth = z.slice().sort(function (a, b) { return b - a; })[k - 1];
      z = z.map(function (v) { return v < kth ? -Infinity : v; });
    }
    var m = Math.max.apply(null, z);
    var e = z.map(function (v) { return Math.exp(v - m); });
    var s = e.reduce(function (a, b) { return a + b; }, 0);
    return e.map(function (v) { return v / s; });
  }
  window.GM_nextTokenProbs = nextTokenProbs;

  function setupSampling() {
    var root = document.getElementById("samp");
    if (!root) { return; }
    var names = [" Lima", " Oslo", " Paris", " Rome", " a", "."];
    function render() {
      var logits = GM.parseVector(document.getElementById("samp-logits").value);
      var T = Number(document.getElementById("samp-T").value);
      var k = Number(document.getElementById("samp-k").value);
      document.getElementById("samp-T-val").textContent = T === 0 ? "0 (greedy)" : T.toFixed(2);
      var err = document.getElementById("samp-error");
      if (!logits || logits.length !== names.length) {
        err.textContent = "Give exactly " + names.length + " numbers.";
        return;
      }
      err.textContent = "";
      var p = nextTokenProbs(logits, T, k);
      var html = "";
      var H = 0;
      p.forEach(function (pi, i) {
        if (pi > 0) { H -= pi * Math.log(pi); }
        html += "<div class=\"bar-row\"><span class=\"mono\">\"" + names[i] + "\"</span><div class=\"bar-track\">" +
          "<div class=\"fill good\" style=\"left:0;width:" + (100 * pi).toFixed(2) + "%\"></div></div>" +
          "<span class=\"mono\" id=\"samp-p-" + i + "\"></span></div>";
      });
      document.getElementById("samp-bars").innerHTML = html;
      p.forEach(function (pi, i) { GM.setOut("samp-p-" + i, pi, 4); });
      GM.setOut("samp-entropy", H, 4);
      GM.setOut("samp-eff", Math.exp(H), 3);
    }
    ["samp-logits", "samp-T", "samp-k"].forEach(function (id) {
      document.getElementById(id).addEventListener("input", render);
      document.getElementById(id).addEventListener("change", render);
    });
    render();
  }

  function setupPerplexity() {
    var root = document.getElementById("ppl");
    if (!root) { return; }
    function render() {
      var V = Number(document.getElementById("ppl-V").value);
      var probs = GM.parseVector(document.getElementById("ppl-probs").value);
      var err = document.getElementById("ppl-error");
      var bad = !probs || !probs.length || probs.some(function (q) { return !(q > 0 && q <= 1); });
      if (bad || !(V >= 2)) {
        err.textContent = "Probabilities must be in (0, 1], and V at least 2.";
        ["ppl-loss", "ppl-ppl", "ppl-bits"].forEach(function (id) { GM.setOut(id, null); });
      } else {
        err.textContent = "";
        var loss = GM.mean(probs.map(function (q) { return -Math.log(q); }));
        GM.setOut("ppl-loss", loss, 4);
        GM.setOut("ppl-ppl", Math.exp(loss), 3);
        GM.setOut("ppl-bits", loss / Math.LN2, 4);
      }
      GM.setOut("ppl-uniform", Math.log(V), 4);
      var L = Number(document.getElementById("ppl-L").value);
      document.getElementById("ppl-L-val").textContent = L.toFixed(2);
      GM.setOut("ppl-L-ppl", Math.exp(L), 3);
    }
    ["ppl-V", "ppl-probs", "ppl-L"].forEach(function (id) { document.getElementById(id).addEventListener("input", render); });
    render();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupSampling();
    setupPerplexity();
  });
})();
