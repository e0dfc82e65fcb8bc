/* Lesson 1 widgets: chat-template tokenizer explorer, causal-mask grid, parameter counter. */
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

  // GPTConfig.num_params: V*C + T*C + L*(12*C*C + 4*C) + 2*C  (head tied to the token embedding)
  function setupParams() {
    var root = document.getElementById("params");
    if (!root) { return; }
    var ids = ["params-V", "params-T", "params-L", "params-C"];
    function render() {
      var V = Number(document.getElementById("params-V").value), T = Number(document.getElementById("params-T").value);
      var L = Number(document.getElementById("params-L").value), C = Number(document.getElementById("params-C").value);
      var emb = V * C + T * C, blocks = L * (12 * C * C + 4 * C), total = emb + blocks + 2 * C;
      GM.setOut("params-emb", emb, 0);
      GM.setOut("params-blocks", blocks, 0);
      GM.setOut("params-total", total, 0);
      document.getElementById("params-share").textContent = (100 * emb / total).toFixed(1) + "%";
    }
    ids.forEach(function (id) { document.getElementById(id).addEventListener("input", render); });
    render();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupTokenizer();
    setupMask();
    setupParams();
  });
})();
