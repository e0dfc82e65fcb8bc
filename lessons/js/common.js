/* Shared helpers for the lesson pages (classic script, no modules, no network).
 * Everything hangs off one global object, GM, so each page's widget file can use it.
 */
(function () {
  "use strict";
  var GM = {};

  // ---- numerics (doubles, written to match the Python reference) ----
  GM.sigmoid = function (z) {
    if (z >= 0) { return 1 / (1 + Math.exp(-z)); }
    var e = Math.exp(z);
    return e / (1 + e);
  };
  // log(sigmoid(z)) without overflow for large |z|
  GM.logSigmoid = function (z) {
    if (z >= 0) { return -Math.log1p(Math.exp(-z)); }
    return z - Math.log1p(Math.exp(z));
  };
  GM.mean = function (xs) {
    var s = 0;
    for (var i = 0; i < xs.length; i++) { s += xs[i]; }
    return s / xs.length;
  };
  GM.parseVector = function (text) {
    var parts = String(text).replace(/[\[\]]/g, " ").split(/[\s,]+/).filter(function (p) { return p.length > 0; });
    var out = parts.map(Number);
    for (var i = 0; i < out.length; i++) {
      if (!isFinite(out[i])) { return null; }
    }
    return out;
  };

  // Write a number into an element: rounded text for the eye, full value in data-value for tests.
  GM.setOut = function (id, value, digits, opts) {
    var el = typeof id === "string" ? document.getElementById(id) : id;
    if (!el) { return; }
    opts = opts || {};
    var d = digits === undefined ? 4 : digits;
    var text;
    if (value === null || value === undefined || (typeof value === "number" && !isFinite(value))) {
      text = "—";
      el.setAttribute("data-value", "");
    } else {
      text = value.toFixed(d);
      if (opts.signed && value >= 0) { text = "+" + text; }
      if (opts.suffix) { text += opts.suffix; }
      el.setAttribute("data-value", String(value));
    }
    el.textContent = text;
  };

  // ---- tiny SVG line plot ----
  var SVGNS = "http://www.w3.org/2000/svg";
  GM.svgEl = function (name, attrs, parent) {
    var el = document.createElementNS(SVGNS, name);
    for (var k in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, k)) { el.setAttribute(k, attrs[k]); } }
    if (parent) { parent.appendChild(el); }
    return el;
  };
  /* series: [{points: [[x,y],...], color, width, dash, label}]
   * opts: {xmin,xmax,ymin,ymax,xlabel,ylabel,xticks:[..],yticks:[..],marker:{x,color}} */
  GM.linePlot = function (svg, series, opts) {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var W = Number(svg.getAttribute("width")), H = Number(svg.getAttribute("height"));
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    var L = 48, R = 12, T = 12, B = 36;
    var sx = function (x) { return L + (x - opts.xmin) / (opts.xmax - opts.xmin) * (W - L - R); };
    var sy = function (y) { return T + (opts.ymax - y) / (opts.ymax - opts.ymin) * (H - T - B); };
    var axis = { stroke: "#888", "stroke-width": 1 };
    (opts.xticks || []).forEach(function (t) {
      GM.svgEl("line", { x1: sx(t), x2: sx(t), y1: T, y2: H - B, stroke: "#eee" }, svg);
      var tx = GM.svgEl("text", { x: sx(t), y: H - B + 14, "font-size": 11, "text-anchor": "middle", fill: "#555" }, svg);
      tx.textContent = String(t);
    });
    (opts.yticks || []).forEach(function (t) {
      GM.svgEl("line", { x1: L, x2: W - R, y1: sy(t), y2: sy(t), stroke: "#eee" }, svg);
      var ty = GM.svgEl("text", { x: L - 6, y: sy(t) + 4, "font-size": 11, "text-anchor": "end", fill: "#555" }, svg);
      ty.textContent = String(t);
    });
    GM.svgEl("line", Object.assign({ x1: L, x2: W - R, y1: H - B, y2: H - B }, axis), svg);
    GM.svgEl("line", Object.assign({ x1: L, x2: L, y1: T, y2: H - B }, axis), svg);
    if (opts.ymin < 0 && opts.ymax > 0) {
      GM.svgEl("line", { x1: L, x2: W - R, y1: sy(0), y2: sy(0), stroke: "#999", "stroke-dasharray": "3 3" }, svg);
    }
    if (opts.xlabel) {
      var xl = GM.svgEl("text", { x: (L + W - R) / 2, y: H - 4, "font-size": 12, "text-anchor": "middle", fill: "#333" }, svg);
      xl.textContent = opts.xlabel;
    }
    if (opts.ylabel) {
      var yl = GM.svgEl("text", { x: 12, y: (T + H - B) / 2, "font-size": 12, "text-anchor": "middle", fill: "#333",
        transform: "rotate(-90 12 " + ((T + H - B) / 2) + ")" }, svg);
      yl.textContent = opts.ylabel;
    }
    // clip so curves that leave the box are cut at its edge
    var clipId = "clip-" + (svg.id || Math.random().toString(36).slice(2));
    var defs = GM.svgEl("defs", {}, svg);
    var cp = GM.svgEl("clipPath", { id: clipId }, defs);
    GM.svgEl("rect", { x: L, y: T, width: W - L - R, height: H - T - B }, cp);
    var g = GM.svgEl("g", { "clip-path": "url(#" + clipId + ")" }, svg);
    series.forEach(function (s) {
      if (!s.points.length) { return; }
      var d = s.points.map(function (p, i) {
        return (i ? "L" : "M") + sx(p[0]).toFixed(2) + " " + sy(Math.max(Math.min(p[1], opts.ymax + 1e3), opts.ymin - 1e3)).toFixed(2);
      }).join(" ");
      GM.svgEl("path", { d: d, fill: "none", stroke: s.color || "#2f6f8f", "stroke-width": s.width || 2,
        "stroke-dasharray": s.dash || "none", opacity: s.opacity === undefined ? 1 : s.opacity }, g);
    });
    if (opts.marker) {
      GM.svgEl("line", { x1: sx(opts.marker.x), x2: sx(opts.marker.x), y1: T, y2: H - B,
        stroke: opts.marker.color || "#b23b3b", "stroke-dasharray": "4 3" }, svg);
    }
    // legend
    var ly = T + 6;
    series.forEach(function (s) {
      if (!s.label) { return; }
      GM.svgEl("line", { x1: W - R - 150, x2: W - R - 130, y1: ly, y2: ly, stroke: s.color, "stroke-width": 3, opacity: s.opacity === undefined ? 1 : s.opacity }, svg);
      var t = GM.svgEl("text", { x: W - R - 125, y: ly + 4, "font-size": 11, fill: "#333" }, svg);
      t.textContent = s.label;
      ly += 15;
    });
    return { sx: sx, sy: sy };
  };

  // ---- grouped bar chart of rates: groups = [{label, key}], models = {name: {key: rate in [0, 1]}} ----
  var BAR_COLORS = ["#9aa3a8", "#2f6f8f", "#c98a2b", "#6a3d9a"];
  GM.barChart = function (svg, groups, models) {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    // as wide as the box it sits in (320 to 640 px), so that a phone shows the labels at their real size
    var avail = svg.parentNode && svg.parentNode.clientWidth;
    var W = avail ? Math.max(320, Math.min(640, Math.floor(avail))) : 640, H = 270, L = 40, R = 10, T = 28, B = 44;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("width", W);
    svg.setAttribute("height", H);
    var names = Object.keys(models), gw = (W - L - R) / groups.length, bw = Math.min(34, (gw - 14) / names.length);
    var sy = function (y) { return T + (1 - y) * (H - T - B); };
    [0, 0.25, 0.5, 0.75, 1].forEach(function (t) {
      GM.svgEl("line", { x1: L, x2: W - R, y1: sy(t), y2: sy(t), stroke: "#e4e1da", "stroke-width": 1 }, svg);
      GM.svgEl("text", { x: L - 4, y: sy(t) + 4, "text-anchor": "end", "font-size": 10, fill: "#666" }, svg)
        .textContent = (100 * t) + "%";
    });
    groups.forEach(function (g, i) {
      var x0 = L + i * gw + (gw - bw * names.length) / 2;
      names.forEach(function (name, j) {
        var v = models[name][g.key];
        if (typeof v !== "number" || v !== v) { return; }
        var rect = GM.svgEl("rect", { x: x0 + j * bw, y: sy(v), width: bw - 2, height: sy(0) - sy(v),
                                      fill: BAR_COLORS[j % BAR_COLORS.length], "data-model": name, "data-key": g.key,
                                      "data-value": v }, svg);
        GM.svgEl("title", {}, rect).textContent = name + ", " + g.label + ": " + (100 * v).toFixed(1) + " %";
        GM.svgEl("text", { x: x0 + j * bw + bw / 2 - 1, y: sy(v) - 3, "text-anchor": "middle", "font-size": 9,
                           fill: "#333" }, svg).textContent = Math.round(100 * v);
      });
      // a label wider than its group (about 6 px a character) goes on two lines, split at a space near the middle
      var label = GM.svgEl("text", { x: L + i * gw + gw / 2, y: H - B + 16, "text-anchor": "middle", "font-size": 11,
                                     fill: "#333" }, svg);
      var words = g.label.split(" "), lines = [g.label];
      if (g.label.length * 6 > gw - 4 && words.length > 1) {
        var best = 1, half = g.label.length / 2;
        for (var k = 1; k < words.length; k++) {
          if (Math.abs(words.slice(0, k).join(" ").length - half) < Math.abs(words.slice(0, best).join(" ").length - half)) { best = k; }
        }
        lines = [words.slice(0, best).join(" "), words.slice(best).join(" ")];
      }
      lines.forEach(function (line, n) {
        GM.svgEl("tspan", { x: L + i * gw + gw / 2, dy: n ? 13 : 0 }, label).textContent = line;
      });
    });
    var lx = L;
    names.forEach(function (name, j) {
      GM.svgEl("rect", { x: lx, y: 6, width: 12, height: 12, fill: BAR_COLORS[j % BAR_COLORS.length] }, svg);
      GM.svgEl("text", { x: lx + 16, y: 16, "font-size": 11, fill: "#333" }, svg).textContent = name;
      lx += 30 + 7 * name.length;
    });
  };

  // ---- the learner's own run: figures and numbers under ../runs/ (optional) ----
  // <figure class="run-figure" data-srcs="../runs/a.png|figures/a.png" data-alt="..."> ... <div class="run-missing">...</div></figure>
  GM.loadRunFigures = function () {
    var figs = document.querySelectorAll("figure.run-figure");
    Array.prototype.forEach.call(figs, function (fig) {
      var srcs = (fig.getAttribute("data-srcs") || "").split("|").filter(Boolean);
      var missing = fig.querySelector(".run-missing");
      var cap = fig.querySelector("figcaption");
      var i = 0;
      var img = document.createElement("img");
      img.alt = fig.getAttribute("data-alt") || "figure from your run";
      img.style.display = "none";
      img.title = "click to open the full-size figure";
      var link = document.createElement("a");   // wide figures: open full size on click
      link.target = "_blank";
      link.appendChild(img);
      fig.insertBefore(link, fig.firstChild);
      function tryNext() {
        if (i >= srcs.length) {
          link.remove();
          fig.setAttribute("data-state", "missing");
          if (missing) { missing.style.display = ""; }
          if (cap) { cap.style.display = "none"; }
          return;
        }
        var src = srcs[i++];
        img.onload = function () {
          img.style.display = "";
          link.href = src;
          fig.setAttribute("data-state", "shown");
          fig.setAttribute("data-shown-src", src);
          if (missing) { missing.style.display = "none"; }
          var which = fig.querySelector(".run-which");
          if (which) { which.textContent = src; }
          if (cap && !cap.querySelector(".enlarge")) {  // say that it opens full size (a phone shows it small)
            var cue = document.createElement("span");
            cue.className = "enlarge";
            cue.textContent = " Click the figure to open it full size.";
            cap.appendChild(cue);
          }
        };
        img.onerror = tryNext;
        img.src = src;
      }
      if (missing) { missing.style.display = "none"; }
      tryNext();
    });
  };

  // [[token, number], ...]: a reply split into tokens with one number each (DPO's per-token log-ratios)
  function isTokenValues(v) {
    return Array.isArray(v) && v.length > 0 && v.every(function (x) {
      return Array.isArray(x) && x.length === 2 && typeof x[0] === "string" && typeof x[1] === "number";
    });
  }
  // coloured chips, as lesson 1 shows tokens: green where the value is positive, red where negative,
  // the stronger the larger |value| (full colour at 3 nats); the exact value is the chip's tooltip
  function tokenChips(pairs) {
    return pairs.map(function (p) {
      var a = Math.min(Math.abs(p[1]) / 3, 1), rgb = p[1] >= 0 ? "47,143,70" : "196,60,50";
      var text = p[0].replace(/ /g, "\u00a0");
      return "<span class=\"token\" style=\"background: rgba(" + rgb + "," + (0.08 + 0.6 * a).toFixed(3) +
        ")\" title=\"" + escapeHtml(p[0]) + ": " + (p[1] >= 0 ? "+" : "") + p[1].toFixed(3) + "\" data-value=\"" +
        p[1] + "\">" + escapeHtml(text) + "</span>";
    }).join("");
  }
  // a value as HTML: numbers rounded, token lists as chips, other lists and objects as readable text
  function renderValue(v) {
    if (typeof v === "number") { return Number.isInteger(v) ? String(v) : escapeHtml(v.toPrecision(5)); }
    if (v === null || v === undefined) { return "—"; }
    if (isTokenValues(v)) { return tokenChips(v); }
    if (Array.isArray(v)) { return v.map(renderValue).join(", "); }
    if (typeof v === "object") {
      return Object.keys(v).map(function (k) { return escapeHtml(k) + ": " + renderValue(v[k]); }).join("; ");
    }
    return escapeHtml(String(v));
  }
  GM.renderValue = renderValue;
  // Draw whatever the stage script stored for this stage: scalars as rows, a list of records as a table (last 8).
  // A stage whose every value is an object of rates ({"SFT": {...}, "DPO": {...}}): one column per model.
  function renderColumns(data) {
    var titles = Object.keys(data), rows = Object.keys(data[titles[0]]);
    var html = "<table><thead><tr><th></th>";
    titles.forEach(function (t) { html += "<th class=\"num\">" + escapeHtml(t) + "</th>"; });
    html += "</tr></thead><tbody>";
    rows.forEach(function (r) {
      html += "<tr><th>" + escapeHtml(r) + "</th>";
      titles.forEach(function (t) {
        var v = data[t][r];
        html += "<td class=\"num\">" + (typeof v === "number" ? (v === v ? (100 * v).toFixed(1) + " %" : "–") : renderValue(v)) + "</td>";
      });
      html += "</tr>";
    });
    return html + "</tbody></table>";
  }
  // data-rows="key|key|...": show only these rows of the stage, in this order (keys compared without their
  // leading spaces); a stage of per-model columns keeps every column and only these rows. If the run has none
  // of them (an older lesson_data.js), every row is shown rather than an empty box.
  function pickRows(data, spec) {
    var want = String(spec || "").split("|").map(function (k) { return k.trim(); }).filter(Boolean);
    if (!want.length) { return data; }
    function pick(obj) {
      var byName = {}, out = {}, n = 0;
      Object.keys(obj).forEach(function (k) { byName[k.trim()] = k; });
      want.forEach(function (w) {
        if (Object.prototype.hasOwnProperty.call(byName, w)) { out[byName[w]] = obj[byName[w]]; n++; }
      });
      return n ? out : null;
    }
    var keys = Object.keys(data);
    var columns = keys.length && keys.every(function (k) {
      var v = data[k]; return v && typeof v === "object" && !Array.isArray(v);
    });
    if (!columns) { return pick(data) || data; }
    var cols = {}, any = false;
    keys.forEach(function (k) { var c = pick(data[k]); cols[k] = c || {}; if (c) { any = true; } });
    return any ? cols : data;
  }
  GM.pickRows = pickRows;
  GM.renderRunData = function (box, data) {
    data = pickRows(data, box.getAttribute("data-rows"));
    var keys = Object.keys(data);
    if (keys.length && keys.every(function (k) { var v = data[k]; return v && typeof v === "object" && !Array.isArray(v); })) {
      box.querySelector(".run-data-body").innerHTML = "<div class=\"scroll-x\">" + renderColumns(data) + "</div>";
      var bars = box.getAttribute("data-bars");  // "label=key|label=key": the headline as a grouped bar chart
      if (bars) {
        var wrap = document.createElement("div");
        wrap.className = "scroll-x";
        var svg = GM.svgEl("svg", { class: "run-bars", role: "img", "aria-label": "grouped bar chart of your run" });
        wrap.appendChild(svg);
        box.querySelector(".run-data-body").insertBefore(wrap, box.querySelector(".run-data-body").firstChild);
        GM.barChart(svg, bars.split("|").map(function (b) { var kv = b.split("="); return { label: kv[0], key: kv[1] }; }),
                    data);
      }
      return;
    }
    var scalars = [], tables = [];
    Object.keys(data).forEach(function (k) {
      var v = data[k];
      if (Array.isArray(v) && v.length && typeof v[0] === "object" && v[0] !== null) { tables.push([k, v]); }
      else { scalars.push([k, v]); }
    });
    var html = "";
    if (scalars.length) {
      html += "<table><tbody>";
      scalars.forEach(function (kv) {
        html += "<tr><th>" + escapeHtml(kv[0]) + "</th><td class=\"num\">" + renderValue(kv[1]) + "</td></tr>";
      });
      html += "</tbody></table>";
    }
    tables.forEach(function (kt) {
      var rows = kt[1].slice(-8);
      var cols = Object.keys(rows[0]);
      html += "<p><strong>" + escapeHtml(kt[0]) + "</strong> (last " + rows.length + " of " + kt[1].length + ")</p><table><thead><tr>";
      cols.forEach(function (c) { html += "<th class=\"num\">" + escapeHtml(c) + "</th>"; });
      html += "</tr></thead><tbody>";
      rows.forEach(function (r) {
        html += "<tr>";
        cols.forEach(function (c) {
          var cell = r[c];
          var cls = isTokenValues(cell) ? "tokens" : (typeof cell === "number" ? "num" : "");
          html += "<td" + (cls ? " class=\"" + cls + "\"" : "") + ">" + renderValue(cell) + "</td>";
        });
        html += "</tr>";
      });
      html += "</tbody></table>";
    });
    // every table in a box that scrolls sideways, so that a wide one never widens the page (a phone)
    box.querySelector(".run-data-body").innerHTML = html.replace(/<table>/g, "<div class=\"scroll-x\"><table>")
      .replace(/<\/table>/g, "</table></div>");
  };
  function escapeHtml(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  GM.escapeHtml = escapeHtml;

  GM.loadRunData = function () {
    var boxes = document.querySelectorAll(".run-data[data-stage]");
    if (!boxes.length) { return; }
    function show() {
      var all = window.GPT_MINI_RUNS || null;
      Array.prototype.forEach.call(boxes, function (box) {
        var stage = box.getAttribute("data-stage");
        var missing = box.querySelector(".run-missing");
        if (all && all[stage] && typeof all[stage] === "object") {
          GM.renderRunData(box, all[stage]);
          box.setAttribute("data-state", "shown");
          if (missing) { missing.style.display = "none"; }
        } else {
          box.setAttribute("data-state", "missing");
          if (missing) { missing.style.display = ""; }
        }
      });
      GM.markOverflow();  // the tables just drawn may be wider than a phone
    }
    if (window.GPT_MINI_RUNS) { show(); return; }
    var s = document.createElement("script");
    s.src = "../runs/lesson_data.js";
    s.onload = show;
    s.onerror = show;
    document.head.appendChild(s);
  };

  // ---- a cue on boxes that scroll sideways (display equations and tables wider than a phone) ----
  // Such a box gets the class "scroll-cue" (CSS fades its right edge) and, right after it, a small
  // "scroll sideways" hint; scrolled to the end, it gets "at-end" (the fade moves to the left edge).
  // Nothing is added to a box whose content fits.
  var SCROLLERS = 'math[display="block"], .scroll-x, .table-scroll, .wide-table, table';
  function scrollsX(el) {
    var o = getComputedStyle(el).overflowX;
    return (o === "auto" || o === "scroll") && el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1;
  }
  function updateEnd(el) {
    el.classList.toggle("at-end", el.scrollLeft + el.clientWidth >= el.scrollWidth - 2);
  }
  GM.markOverflow = function () {
    Array.prototype.forEach.call(document.querySelectorAll(SCROLLERS), function (el) {
      var next = el.nextElementSibling, hasHint = next && next.classList.contains("scroll-hint");
      if (scrollsX(el)) {
        el.classList.add("scroll-cue");
        updateEnd(el);
        if (!el.hasAttribute("data-cue-listener")) {
          el.setAttribute("data-cue-listener", "");
          el.addEventListener("scroll", function () { updateEnd(el); }, { passive: true });
        }
        if (!hasHint) {
          var hint = document.createElement("span");
          hint.className = "scroll-hint";
          hint.setAttribute("aria-hidden", "true");
          hint.textContent = "scroll sideways \u2192";
          // right under the box: pull the hint up over the box's own bottom margin
          hint.style.marginTop = (2 - (parseFloat(getComputedStyle(el).marginBottom) || 0)) + "px";
          el.parentNode.insertBefore(hint, el.nextSibling);
        }
      } else {
        el.classList.remove("scroll-cue", "at-end");
        if (hasHint) { next.remove(); }
      }
    });
  };
  var pending = null;
  function markSoon() {
    if (pending) { return; }
    pending = setTimeout(function () { pending = null; GM.markOverflow(); }, 100);
  }

  document.addEventListener("DOMContentLoaded", function () {
    GM.loadRunFigures();
    GM.loadRunData();
    GM.markOverflow();
    window.addEventListener("load", GM.markOverflow);  // fonts and MathML layout are final by then
    window.addEventListener("resize", markSoon);
    document.addEventListener("toggle", markSoon, true);  // an answer box opened: its equations now have a width
    document.addEventListener("input", markSoon, true);   // a widget redrew its table
    document.addEventListener("change", markSoon, true);
  });

  window.GM = GM;
})();
