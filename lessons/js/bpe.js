/* The project's byte-level BPE tokenizer, re-implemented for the browser.
 * Ranks come from js/tokenizer_data.js, which lessons/sync_excerpts.py writes from
 * data/tokenizer.tiktoken. Encoding follows tiktoken: split the text with the
 * pre-tokenizer pattern, then inside each piece keep merging the adjacent pair whose
 * joined bytes have the lowest rank (leftmost on a tie) until no pair is in the table.
 * tests/test_lessons.py checks the ids against gpt_mini.tokenizer for a table of texts.
 */
(function () {
  "use strict";
  var data = window.GM_TOKENIZER_DATA;
  var BPE = { ready: !!data };
  if (!data) { window.GM_BPE = BPE; return; }

  var rankOf = new Map();          // latin1 string of the token's bytes -> rank
  var bytesOf = [];                // rank -> latin1 string
  data.ranks.forEach(function (b64, rank) {
    var s = atob(b64);
    rankOf.set(s, rank);
    bytesOf[rank] = s;
  });
  var specials = data.specials;    // name -> id
  var specialName = {};
  Object.keys(specials).forEach(function (k) { specialName[specials[k]] = k; });

  // gpt_mini/tokenizer.py SPLIT_PATTERN, written without possessive quantifiers and
  // inline flags (JS has neither); for these alternatives the matches are the same.
  var SPLIT = /'(?:[sdmtSDMT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+/gu;

  function utf8Latin1(str) {       // text -> its UTF-8 bytes as a latin1 string
    return unescape(encodeURIComponent(str));
  }
  function mergePiece(bytes) {
    var whole = rankOf.get(bytes);
    if (whole !== undefined) { return [whole]; }
    var parts = bytes.split("");
    while (parts.length > 1) {
      var best = -1, bestRank = Infinity;
      for (var i = 0; i < parts.length - 1; i++) {
        var r = rankOf.get(parts[i] + parts[i + 1]);
        if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
      }
      if (best < 0) { break; }
      parts.splice(best, 2, parts[best] + parts[best + 1]);
    }
    return parts.map(function (p) { return rankOf.get(p); });
  }
  BPE.encodeOrdinary = function (text) {
    var ids = [];
    var pieces = String(text).match(SPLIT) || [];
    pieces.forEach(function (piece) {
      Array.prototype.push.apply(ids, mergePiece(utf8Latin1(piece)));
    });
    return ids;
  };
  BPE.special = function (name) { return specials[name]; };
  // Same as gpt_mini.tokenizer.render_chat: ids and a response mask (1 on assistant content and its END).
  BPE.renderChat = function (messages) {
    var ids = [specials["<|bos|>"]], mask = [0];
    messages.forEach(function (m) {
      var content = BPE.encodeOrdinary(m.content);
      var isReply = m.role === "assistant" ? 1 : 0;
      ids.push(specials[m.role === "assistant" ? "<|assistant|>" : "<|user|>"]);
      mask.push(0);
      content.forEach(function (id) { ids.push(id); mask.push(isReply); });
      ids.push(specials["<|end|>"]);
      mask.push(isReply);
    });
    return { ids: ids, mask: mask };
  };
  // Printable text of one token (special tokens by name; bytes decoded as UTF-8 when possible).
  BPE.show = function (id) {
    if (specialName[id] !== undefined) { return specialName[id]; }
    var s = bytesOf[id];
    if (s === undefined) { return "?"; }
    try { return decodeURIComponent(escape(s)); } catch (e) {
      return s.split("").map(function (c) { return "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0"); }).join("");
    }
  };
  BPE.isSpecial = function (id) { return specialName[id] !== undefined; };
  BPE.vocabSize = data.ranks.length + Object.keys(specials).length;
  window.GM_BPE = BPE;
})();
