/* Lesson 3 widget: which targets the SFT loss counts (response mask, shifted by one). */
(function () {
  "use strict";
  var GM = window.GM;

  function setupMaskTable() {
    var root = document.getElementById("sftmask");
    if (!root) { return; }
    var BPE = window.GM_BPE;
    if (!BPE || !BPE.ready) { return; }
    var ids = ["sm-u1", "sm-a1", "sm-u2", "sm-a2", "sm-all"];
    function render() {
      var msgs = [];
      [["user", "sm-u1"], ["assistant", "sm-a1"], ["user", "sm-u2"], ["assistant", "sm-a2"]].forEach(function (rm) {
        var text = document.getElementById(rm[1]).value;
        if (text.length) { msgs.push({ role: rm[0], content: text }); }
      });
      var r = BPE.renderChat(msgs);
      var everything = document.getElementById("sm-all").checked;
      var T = r.ids.length, counted = [];
      var html = "<thead><tr><th class=\"num\">t</th><th>input s<sub>t</sub></th><th>target s<sub>t+1</sub></th><th class=\"num\">mask[t+1]</th><th>in the loss?</th></tr></thead><tbody>";
      for (var t = 0; t < T - 1; t++) {
        var m = r.mask[t + 1];
        var on = everything ? 1 : m;
        counted.push(on);
        html += "<tr class=\"" + (on ? "counted" : "") + "\"><td class=\"num\">" + t + "</td><td><span class=\"token" +
          (BPE.isSpecial(r.ids[t]) ? " special" : "") + "\">" + GM.escapeHtml(BPE.show(r.ids[t])) + "</span></td><td><span class=\"token" +
          (BPE.isSpecial(r.ids[t + 1]) ? " special" : "") + (on ? " on" : " off") + "\">" + GM.escapeHtml(BPE.show(r.ids[t + 1])) +
          "</span></td><td class=\"num\">" + m + "</td><td>" + (on ? "yes" : "no") + "</td></tr>";
      }
      document.getElementById("sm-table").innerHTML = html + "</tbody>";
      var n = counted.reduce(function (a, b) { return a + b; }, 0);
      GM.setOut("sm-positions", T - 1, 0);
      GM.setOut("sm-counted", n, 0);
      GM.setOut("sm-share", T > 1 ? 100 * n / (T - 1) : 0, 1, { suffix: "%" });
      document.getElementById("sm-flags").textContent = JSON.stringify(counted);
    }
    ids.forEach(function (id) {
      document.getElementById(id).addEventListener("input", render);
      document.getElementById(id).addEventListener("change", render);
    });
    render();
  }

  document.addEventListener("DOMContentLoaded", setupMaskTable);
})();
