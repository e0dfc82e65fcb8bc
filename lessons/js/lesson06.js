/* Lesson 6 widgets: group-relative advantages, and the clipped surrogate for one token. */
(function () {
  "use strict";
  var GM = window.GM;

  // gpt_mini/losses.py group_advantages for one group:
  // A = (r - mean) / (population std + eps), and exactly 0 for a group whose rewards are all equal.
  function groupAdvantages(rewards, eps) {
    var G = rewards.length, mean = GM.mean(rewards);
    var v = 0;
    rewards.forEach(function (r) { v += (r - mean) * (r - mean); });
    var std = Math.sqrt(v / G);
    var allEqual = rewards.every(function (r) { return r === rewards[0]; });
    return { mean: mean, std: std, adv: rewards.map(function (r) { return allEqual ? 0 : (r - mean) / (std + eps); }) };
  }
  window.GM_groupAdvantages = groupAdvantages;

  function setupGroup() {
    var root = document.getElementById("grp");
    if (!root) { return; }
    var rewards = [1, 0, 0, 1, 0, 0, 0, 0];
    function setG(G) {
      G = Math.max(1, Math.min(16, Math.round(G)));
      while (rewards.length < G) { rewards.push(0); }
      rewards = rewards.slice(0, G);
    }
    function render() {
      var text = document.getElementById("grp-rewards");
      var eps = Number(document.getElementById("grp-eps").value);
      var res = groupAdvantages(rewards, eps);
      var box = document.getElementById("grp-samples");
      var html = "";
      rewards.forEach(function (r, i) {
        html += "<button type=\"button\" class=\"grp-sample\" data-i=\"" + i + "\" title=\"click to flip this sample's reward\">" +
          "sample " + (i + 1) + "<br><strong>" + (r === 1 ? "✓ 1" : (r === 0 ? "✗ 0" : String(r))) + "</strong></button>";
      });
      box.innerHTML = html;
      Array.prototype.forEach.call(box.querySelectorAll(".grp-sample"), function (b) {
        b.addEventListener("click", function () {
          var i = Number(b.getAttribute("data-i"));
          rewards[i] = rewards[i] === 1 ? 0 : 1;
          text.value = rewards.join(", ");
          render();
        });
      });
      var rows = "";
      res.adv.forEach(function (a, i) {
        var frac = Math.min(Math.abs(a) / 3, 1) * 50;
        rows += "<div class=\"bar-row\"><span>sample " + (i + 1) + " (r = " + rewards[i] + ")</span><div class=\"bar-track\"><div class=\"zero\"></div>" +
          "<div class=\"fill " + (a >= 0 ? "good" : "bad") + "\" style=\"left:" + (a >= 0 ? 50 : 50 - frac) + "%;width:" + frac + "%\"></div></div>" +
          "<span class=\"mono\" id=\"grp-adv-" + i + "\"></span></div>";
      });
      document.getElementById("grp-bars").innerHTML = rows;
      res.adv.forEach(function (a, i) { GM.setOut("grp-adv-" + i, a, 4, { signed: true }); });
      GM.setOut("grp-mean", res.mean, 4);
      GM.setOut("grp-std", res.std, 4);
      GM.setOut("grp-G", rewards.length, 0);
      document.getElementById("grp-signal").textContent = res.adv.every(function (a) { return a === 0; }) ?
        "All rewards are equal: every advantage is 0, this group teaches nothing." :
        "Above-average samples are pushed up, below-average ones down; the advantages sum to 0.";
    }
    document.getElementById("grp-rewards").addEventListener("input", function () {
      var v = GM.parseVector(document.getElementById("grp-rewards").value);
      var err = document.getElementById("grp-error");
      if (!v || !v.length || v.length > 16) { err.textContent = "Give 1 to 16 numbers."; return; }
      err.textContent = "";
      rewards = v;
      render();
    });
    document.getElementById("grp-eps").addEventListener("input", render);
    document.getElementById("grp-G-in").addEventListener("change", function () {
      setG(Number(document.getElementById("grp-G-in").value));
      document.getElementById("grp-rewards").value = rewards.join(", ");
      render();
    });
    document.getElementById("grp-rewards").value = rewards.join(", ");
    render();
  }

  // One token of policy_gradient_loss with kl_coef = 0:
  // loss = -min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A)
  function setupClip() {
    var root = document.getElementById("clip");
    if (!root) { return; }
    function lossAt(ratio, A, eps) {
      var clipped = Math.min(Math.max(ratio, 1 - eps), 1 + eps);
      return -Math.min(ratio * A, clipped * A);
    }
    function render() {
      var ratio = Number(document.getElementById("clip-ratio").value);
      var A = Number(document.getElementById("clip-A").value);
      var eps = Number(document.getElementById("clip-eps").value);
      document.getElementById("clip-ratio-val").textContent = ratio.toFixed(2);
      document.getElementById("clip-A-val").textContent = A.toFixed(2);
      document.getElementById("clip-eps-val").textContent = eps.toFixed(2);
      GM.setOut("clip-loss", lossAt(ratio, A, eps), 4);
      var active = (ratio < 1 - eps && A < 0) || (ratio > 1 + eps && A > 0);
      var out = document.getElementById("clip-active");
      out.textContent = active ? "yes: gradient cut to 0" : "no";
      out.setAttribute("data-value", active ? "1" : "0");
      var pts = [];
      for (var r = 0; r <= 2.0001; r += 0.01) { pts.push([r, -lossAt(r, A, eps)]); }
      var lin = [[0, 0], [2, 2 * A]];
      var lo = Math.min(0, 2 * A, -Math.abs(A)) - 0.2, hi = Math.max(0, 2 * A, Math.abs(A)) + 0.2;
      GM.linePlot(document.getElementById("clip-plot"), [
        { points: lin, color: "#999", width: 1.5, dash: "5 4", label: "ratio × A" },
        { points: pts, color: "#2f6f8f", width: 2.5, label: "clipped objective" }
      ], { xmin: 0, xmax: 2, ymin: lo, ymax: hi, xticks: [0, 0.5, 1, 1.5, 2],
           yticks: [Math.ceil(lo), 0, Math.floor(hi)].filter(function (v, i, a) { return a.indexOf(v) === i; }),
           xlabel: "ratio π/π_old", ylabel: "objective (−loss)", marker: { x: ratio } });
    }
    ["clip-ratio", "clip-A", "clip-eps"].forEach(function (id) { document.getElementById(id).addEventListener("input", render); });
    render();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupGroup();
    setupClip();
  });
})();
