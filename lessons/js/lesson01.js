/* Lesson 1 widgets: chat-template tokenizer explorer, causal-mask grid, RoPE scores, parameter counter. */
(function () {
  "use strict";
  var GM = window.GM;

  function chip(id, cls, title) {
    var span = document.createElement("span");
    span.className = "token " + cls;
    span.textContent = window.GM_BPE.show(id);
    span.title = title;
    span.setAttribute("data-id", String(id));
    return span;
  }

  function setupTokenizer() {
    var root = document.getElementById("tok");
    if (!root) { return; }
    var BPE = window.GM_BPE;
    if (!BPE || !BPE.ready) {
      document.getElementById("tok-out").textContent = "js/tokenizer_data.js is missing: run python lessons/sync_excerpts.py";
      return;
    }
    function render() {
      var user = document.getElementById("tok-user").value;
      var reply = document.getElementById("tok-reply").value;
      var messages = [{ role: "user", content: user }];
      if (reply.length) { messages.push({ role: "assistant", content: reply }); }
      var r = BPE.renderChat(messages);
      var out = document.getElementById("tok-out");
      out.innerHTML = "";
      r.ids.forEach(function (id, i) {
        var cls = BPE.isSpecial(id) ? "special" : "";
        if (r.mask[i]) { cls += " on"; }
        out.appendChild(chip(id, cls, "position " + i + ", id " + id + ", mask " + r.mask[i]));
      });
      document.getElementById("tok-ids").textContent = JSON.stringify(r.ids);
      document.getElementById("tok-mask").textContent = JSON.stringify(r.mask);
      GM.setOut("tok-count", r.ids.length, 0);
      GM.setOut("tok-masked", r.mask.reduce(function (a, b) { return a + b; }, 0), 0);
      GM.setOut("tok-chars", user.length + reply.length, 0);
    }
    ["tok-user", "tok-reply"].forEach(function (id) { document.getElementById(id).addEventListener("input", render); });
    render();
  }

  function setupMask() {
    var root = document.getElementById("mask");
    if (!root) { return; }
    var TIn = document.getElementById("mask-T");
    var selected = -1;
    function render() {
      var T = Math.max(1, Math.min(16, Math.round(Number(TIn.value) || 1)));
      document.getElementById("mask-T-val").textContent = String(T);
      var table = document.getElementById("mask-grid");
      var html = "<thead><tr><th>q \\ k</th>";
      for (var j = 0; j < T; j++) { html += "<th>" + j + "</th>"; }
      html += "</tr></thead><tbody>";
      for (var i = 0; i < T; i++) {
        html += "<tr data-row=\"" + i + "\"><th>" + i + "</th>";
        for (var k = 0; k < T; k++) {
          var allow = k <= i;
          var mark = (i === selected && allow) ? "●" : "";
          html += "<td class=\"" + (allow ? "allow" : "block") + "\" data-allow=\"" + (allow ? 1 : 0) + "\">" + mark + "</td>";
        }
        html += "</tr>";
      }
      table.innerHTML = html + "</tbody>";
      Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (tr) {
        tr.addEventListener("click", function () { selected = Number(tr.getAttribute("data-row")); render(); });
      });
      var note = document.getElementById("mask-note");
      if (selected >= 0 && selected < T) {
        note.textContent = "Position " + selected + " mixes the values of positions 0.." + selected +
          " (" + (selected + 1) + " of " + T + ") and its logits are scored against the token at position " +
          (selected + 1) + (selected + 1 >= T ? ", which is not in this window: the last position has no target here." : ".");
      } else {
        note.textContent = "Click a row to see what that position may look at.";
      }
      GM.setOut("mask-allowed", T * (T + 1) / 2, 0);
      GM.setOut("mask-targets", T - 1, 0);
    }
    TIn.addEventListener("input", render);
    render();
  }

  // ---- RoPE: gpt_mini/model.py rope_tables + apply_rope, in doubles ----
  // The fixed example vectors (the test builds the same ones in Python):
  //   q[j] = ((3j + 1) mod 7 - 3) / 3,   k[j] = ((5j + 2) mod 9 - 4) / 4
  function ropeExample(D) {
    var q = [], k = [];
    for (var j = 0; j < D; j++) {
      q.push(((3 * j + 1) % 7 - 3) / 3);
      k.push(((5 * j + 2) % 9 - 4) / 4);
    }
    return { q: q, k: k };
  }
  // theta_i = base^(-2i/D), i = 0 .. D/2 - 1   (rope_tables' inv_freq)
  function ropeThetas(D, base) {
    var th = [];
    for (var i = 0; i < D / 2; i++) { th.push(Math.pow(base, -2 * i / D)); }
    return th;
  }
  // apply_rope for one vector at position t: pair i is (x[i], x[i + D/2]), turned by t * theta_i
  function ropeRotate(x, t, thetas) {
    var h = x.length / 2, out = new Array(x.length);
    for (var i = 0; i < h; i++) {
      var c = Math.cos(t * thetas[i]), s = Math.sin(t * thetas[i]);
      out[i] = x[i] * c - x[i + h] * s;
      out[i + h] = x[i] * s + x[i + h] * c;
    }
    return out;
  }
  function dot(a, b) {
    var s = 0;
    for (var i = 0; i < a.length; i++) { s += a[i] * b[i]; }
    return s;
  }
  window.GM_rope = { example: ropeExample, thetas: ropeThetas, rotate: ropeRotate };

  function setupRope() {
    var root = document.getElementById("rope");
    if (!root) { return; }
    var BLOCK = 128;   // 01_pretrain.py's default block_size
    var pairSel = document.getElementById("rope-pair");
    var pair = 0;
    function num(id) { return Number(document.getElementById(id).value); }
    function fmtVec(v) { return "[" + v.map(function (x) { return x.toFixed(3); }).join(", ") + "]"; }
    function pairAngle(v, i, h) { return Math.atan2(v[i + h], v[i]); }
    function wrapDeg(rad) {   // an angle in degrees, in (-180, 180]
      var d = rad * 180 / Math.PI;
      d = d - 360 * Math.round(d / 360);
      return d <= -180 ? d + 360 : d;
    }
    function draw(v, i, h) {
      var svg = document.getElementById("rope-plot");
      while (svg.firstChild) { svg.removeChild(svg.firstChild); }
      var W = 300, c = W / 2;
      svg.setAttribute("viewBox", "0 0 " + W + " " + W);
      var vecs = [[v.q, "#bbb", ""], [v.k, "#d7c9a8", ""], [v.qm, "#2f6f8f", ""], [v.kn, "#c0661c", ""],
                  [v.qs, "#2f6f8f", "6 4"], [v.ks, "#c0661c", "6 4"]];
      var r = 0;
      vecs.forEach(function (e) { r = Math.max(r, Math.hypot(e[0][i], e[0][i + h])); });
      var scale = r > 0 ? (c - 40) / r : 1;
      GM.svgEl("line", { x1: 10, x2: W - 10, y1: c, y2: c, stroke: "#ddd" }, svg);
      GM.svgEl("line", { x1: c, x2: c, y1: 10, y2: W - 10, stroke: "#ddd" }, svg);
      [Math.hypot(v.q[i], v.q[i + h]), Math.hypot(v.k[i], v.k[i + h])].forEach(function (rad) {
        GM.svgEl("circle", { cx: c, cy: c, r: rad * scale, fill: "none", stroke: "#eee" }, svg);
      });
      vecs.forEach(function (e, n) {
        var x = c + e[0][i] * scale, y = c - e[0][i + h] * scale;
        GM.svgEl("line", { x1: c, y1: c, x2: x, y2: y, stroke: e[1], "stroke-width": n < 2 ? 1.5 : 2.5,
          "stroke-dasharray": e[2] || "none" }, svg);
        GM.svgEl("circle", { cx: x, cy: y, r: 3.5, fill: e[1] }, svg);
      });
      var cap = GM.svgEl("text", { x: 8, y: 16, "font-size": 11, fill: "#555" }, svg);
      cap.textContent = "pair " + i + ": (x[" + i + "], x[" + (i + h) + "])";
      // legend instead of labels on the arrows, which overlap when a slow pair hardly turns
      [["q", "#2f6f8f"], ["k", "#c0661c"]].forEach(function (e, n) {
        var y = W - 34 + 14 * n;
        GM.svgEl("line", { x1: 8, x2: 26, y1: y, y2: y, stroke: e[1], "stroke-width": 2.5 }, svg);
        GM.svgEl("line", { x1: 30, x2: 48, y1: y, y2: y, stroke: e[1], "stroke-width": 2.5, "stroke-dasharray": "6 4" }, svg);
        var t = GM.svgEl("text", { x: 54, y: y + 4, "font-size": 11, fill: e[1] }, svg);
        t.textContent = e[0] + (n ? " at n, n+s" : " at m, m+s");
      });
      var g = GM.svgEl("text", { x: W - 8, y: W - 10, "font-size": 11, fill: "#999", "text-anchor": "end" }, svg);
      g.textContent = "grey: before rotation";
    }
    function render() {
      var D = Math.max(2, 2 * Math.round(num("rope-D") / 2)), base = num("rope-base");
      var m = Math.round(num("rope-m")), n = Math.round(num("rope-n")), s = Math.round(num("rope-s"));
      var h = D / 2;
      document.getElementById("rope-m-val").textContent = String(m);
      document.getElementById("rope-n-val").textContent = String(n);
      document.getElementById("rope-s-val").textContent = String(s);
      if (pairSel.options.length !== h) {
        var opts = "";
        for (var p = 0; p < h; p++) { opts += "<option value=\"" + p + "\">" + p + "</option>"; }
        pairSel.innerHTML = opts;
        pair = Math.min(pair, h - 1);
        pairSel.value = String(pair);
      }
      var err = document.getElementById("rope-error");
      if (!(base > 1) || !isFinite(base)) {
        err.textContent = "The base must be a number larger than 1.";
        ["rope-score", "rope-score-shift", "rope-diff", "rope-raw", "rope-angle", "rope-angle-shift"].forEach(function (id) { GM.setOut(id, null); });
        document.getElementById("rope-table").innerHTML = "";
        return;
      }
      err.textContent = "";
      var ex = ropeExample(D), th = ropeThetas(D, base);
      var v = { q: ex.q, k: ex.k, qm: ropeRotate(ex.q, m, th), kn: ropeRotate(ex.k, n, th),
                qs: ropeRotate(ex.q, m + s, th), ks: ropeRotate(ex.k, n + s, th) };
      document.getElementById("rope-q").textContent = fmtVec(ex.q);
      document.getElementById("rope-k").textContent = fmtVec(ex.k);
      var html = "<thead><tr><th class=\"num\">pair i</th><th class=\"num\">θ<sub>i</sub></th><th class=\"num\">q at m</th><th class=\"num\">k at n</th>" +
        "<th class=\"num\">term at<br>(m, n)</th><th class=\"num\">q at m+s</th><th class=\"num\">k at n+s</th><th class=\"num\">term at<br>(m+s, n+s)</th></tr></thead><tbody>";
      function cellPair(prefix, i) {
        return "<td class=\"num\"><span id=\"" + prefix + i + "\"></span><br><span id=\"" + prefix + (i + h) + "\"></span></td>";
      }
      for (var i = 0; i < h; i++) {
        html += "<tr data-pair=\"" + i + "\"" + (i === pair ? " class=\"picked\"" : "") + "><td class=\"num\">" + i + "</td>" +
          "<td class=\"num\"><span id=\"rope-theta-" + i + "\"></span></td>" +
          cellPair("rope-qm-", i) + cellPair("rope-kn-", i) + "<td class=\"num\"><span id=\"rope-term-" + i + "\"></span></td>" +
          cellPair("rope-qs-", i) + cellPair("rope-ks-", i) + "<td class=\"num\"><span id=\"rope-term-s-" + i + "\"></span></td></tr>";
      }
      var table = document.getElementById("rope-table");
      table.innerHTML = html + "</tbody>";
      for (var j = 0; j < D; j++) {
        GM.setOut("rope-qm-" + j, v.qm[j], 3);
        GM.setOut("rope-kn-" + j, v.kn[j], 3);
        GM.setOut("rope-qs-" + j, v.qs[j], 3);
        GM.setOut("rope-ks-" + j, v.ks[j], 3);
      }
      for (var i2 = 0; i2 < h; i2++) {
        var thEl = document.getElementById("rope-theta-" + i2);
        thEl.setAttribute("data-value", String(th[i2]));
        thEl.textContent = th[i2] >= 0.001 ? th[i2].toFixed(4) : th[i2].toExponential(2);
        GM.setOut("rope-term-" + i2, v.qm[i2] * v.kn[i2] + v.qm[i2 + h] * v.kn[i2 + h], 4);
        GM.setOut("rope-term-s-" + i2, v.qs[i2] * v.ks[i2] + v.qs[i2 + h] * v.ks[i2 + h], 4);
      }
      Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (tr) {
        tr.addEventListener("click", function () { pair = Number(tr.getAttribute("data-pair")); pairSel.value = String(pair); render(); });
      });
      var score = dot(v.qm, v.kn), shifted = dot(v.qs, v.ks);
      GM.setOut("rope-offset", n - m, 0);
      GM.setOut("rope-raw", dot(ex.q, ex.k), 4);
      GM.setOut("rope-score", score, 4);
      GM.setOut("rope-score-shift", shifted, 4);
      var diffEl = document.getElementById("rope-diff");
      diffEl.setAttribute("data-value", String(shifted - score));
      diffEl.textContent = (shifted - score).toExponential(1);
      GM.setOut("rope-angle", wrapDeg(pairAngle(v.kn, pair, h) - pairAngle(v.qm, pair, h)), 2, { suffix: "°" });
      GM.setOut("rope-angle-shift", wrapDeg(pairAngle(v.ks, pair, h) - pairAngle(v.qs, pair, h)), 2, { suffix: "°" });
      draw(v, pair, h);
      var notes = [];
      if (n > m) { notes.push("The key comes after the query (n > m): the causal mask would hide this pair, but the score formula is the same."); }
      if (m + s >= BLOCK || n + s >= BLOCK) {
        notes.push("m + s or n + s is " + BLOCK + " or more: the formula still works, but our model's tables stop at block_size = " +
          BLOCK + " and GPT.forward raises an error there.");
      }
      document.getElementById("rope-note").textContent = notes.join(" ");
    }
    ["rope-m", "rope-n", "rope-s", "rope-base", "rope-D"].forEach(function (id) {
      document.getElementById(id).addEventListener("input", render);
      document.getElementById(id).addEventListener("change", render);
    });
    pairSel.addEventListener("change", function () { pair = Number(pairSel.value); render(); });
    render();
  }

  // GPTConfig.num_params: V*C + (0 with RoPE, T*C with a learned table) + L*(12*C*C + 4*C) + 2*C
  // (head tied to the token embedding)
  function setupParams() {
    var root = document.getElementById("params");
    if (!root) { return; }
    var ids = ["params-V", "params-T", "params-L", "params-C", "params-position"];
    function render() {
      var V = Number(document.getElementById("params-V").value), T = Number(document.getElementById("params-T").value);
      var L = Number(document.getElementById("params-L").value), C = Number(document.getElementById("params-C").value);
      var rope = document.getElementById("params-position").value === "rope";
      var pos = rope ? 0 : T * C;
      var emb = V * C + pos, blocks = L * (12 * C * C + 4 * C), total = emb + blocks + 2 * C;
      document.getElementById("params-emb-label").textContent = rope ? "embeddings VC" : "embeddings VC + TC";
      document.getElementById("params-pos-label").textContent = rope ? "positions (RoPE: none)" : "position table TC";
      GM.setOut("params-pos", pos, 0);
      GM.setOut("params-emb", emb, 0);
      GM.setOut("params-blocks", blocks, 0);
      GM.setOut("params-total", total, 0);
      document.getElementById("params-share").textContent = (100 * emb / total).toFixed(1) + "%";
    }
    ids.forEach(function (id) {
      document.getElementById(id).addEventListener("input", render);
      document.getElementById(id).addEventListener("change", render);
    });
    render();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupTokenizer();
    setupMask();
    setupRope();
    setupParams();
  });
})();
