/* Lesson 4 widget: a sum answered directly vs step by step, and what the verifier reads. */
(function () {
  "use strict";
  var GM = window.GM;

  // gpt_mini/world.py: working(a, op, b) and direct_answer(a, op, b)
  function working(a, op, b) {
    var a1 = Math.floor(a / 10), a0 = a % 10, b1 = Math.floor(b / 10), b0 = b % 10;
    if (op === "+") {
      var s0 = a0 + b0, carry = Math.floor(s0 / 10), s1 = a1 + b1 + carry;
      return "We add " + a + " + " + b + ". Ones: " + a0 + " + " + b0 + " = " + s0 + ", write " + (s0 % 10) +
        ", carry " + carry + ". Tens: " + a1 + " + " + b1 + " + " + carry + " = " + s1 + ". The answer is " + (a + b) + ".";
    }
    var borrow = a0 < b0 ? 1 : 0, top = a0 + 10 * borrow;
    return "We subtract " + a + " - " + b + ". Ones: " + top + " - " + b0 + " = " + (top - b0) + ", borrow " + borrow +
      ". Tens: " + a1 + " - " + borrow + " - " + b1 + " = " + (a1 - borrow - b1) + ". The answer is " + (a - b) + ".";
  }
  function directAnswer(a, op, b) {
    return a + " " + op + " " + b + " = " + (op === "+" ? a + b : a - b) + ".";
  }

  // gpt_mini/verifier.py: extract_answer(text)
  function normalise(num) {
    var neg = num.charAt(0) === "-";
    var digits = num.replace(/^-+/, "").replace(/^0+/, "") || "0";
    return neg && digits !== "0" ? "-" + digits : digits;
  }
  function extractAnswer(text) {
    if (typeof text !== "string" || !text.length) { return null; }
    var re = /answer(?: is|:| =|=)[ \t]{0,8}(-?[0-9]+)/gi, m, last = null;
    while ((m = re.exec(text)) !== null) { last = m[1]; }
    if (last === null) {
      var ints = /(?<![0-9A-Za-z])-?[0-9]+|[0-9]+/g;
      while ((m = ints.exec(text)) !== null) { last = m[0]; }
    }
    return last === null ? null : normalise(last);
  }
  window.GM_extractAnswer = extractAnswer;

  function setupCot() {
    var root = document.getElementById("cot");
    if (!root) { return; }
    var BPE = window.GM_BPE;
    function render() {
      var a = Math.round(Number(document.getElementById("cot-a").value));
      var b = Math.round(Number(document.getElementById("cot-b").value));
      var op = document.getElementById("cot-op").value;
      var err = document.getElementById("cot-error");
      if (!(a >= 10 && a <= 99 && b >= 10 && b <= 99) || (op === "-" && a < b)) {
        err.textContent = "Use two-digit numbers (10 to 99), and a ≥ b for subtraction, as in the world's data.";
        return;
      }
      err.textContent = "";
      var direct = directAnswer(a, op, b), cot = working(a, op, b);
      document.getElementById("cot-direct").textContent = direct;
      document.getElementById("cot-steps").textContent = cot;
      document.getElementById("cot-direct-prompt").textContent = "What is " + a + " " + op + " " + b + "?";
      document.getElementById("cot-steps-prompt").textContent = "What is " + a + " " + op + " " + b + "? Think step by step.";
      if (BPE && BPE.ready) {
        GM.setOut("cot-direct-n", BPE.encodeOrdinary(direct).length, 0);
        GM.setOut("cot-steps-n", BPE.encodeOrdinary(cot).length, 0);
        var before = BPE.encodeOrdinary(direct.split("= ")[0] + "= ").length;
        GM.setOut("cot-direct-before", before, 0);
        GM.setOut("cot-steps-before", BPE.encodeOrdinary(cot.split("The answer is")[0]).length, 0);
      }
      document.getElementById("cot-direct-read").textContent = extractAnswer(direct);
      document.getElementById("cot-steps-read").textContent = extractAnswer(cot);
      var carry = op === "+" ? (a % 10 + b % 10 >= 10) : (a % 10 < b % 10);
      document.getElementById("cot-carry").textContent = carry ?
        (op === "+" ? "This sum has a carry: the tens digit depends on the ones." : "This difference needs a borrow: the tens digit depends on the ones.") :
        "No carry or borrow here: each digit can be written independently.";
    }
    function renderFree() {
      var got = extractAnswer(document.getElementById("cot-free").value);
      document.getElementById("cot-free-read").textContent = got === null ? "None (reward 0)" : got;
    }
    ["cot-a", "cot-b", "cot-op"].forEach(function (id) {
      document.getElementById(id).addEventListener("input", render);
      document.getElementById(id).addEventListener("change", render);
    });
    document.getElementById("cot-free").addEventListener("input", renderFree);
    render();
    renderFree();
  }
  document.addEventListener("DOMContentLoaded", setupCot);
})();
