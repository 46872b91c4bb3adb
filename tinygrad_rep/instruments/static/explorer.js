// The backprop explorer's page script (tinygrad_rep, MIT license; no dependencies).
// Reads the graph JSON from <script id="tr-graph">, draws it as SVG, fills #tr-node-panel on a
// click and walks the backward steps in #tr-step. The schema is in instruments/explorer.py.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("tr-graph").textContent);
  var nodes = data.nodes, steps = data.steps;
  var NS = "http://www.w3.org/2000/svg", W = 170, H = 54;
  var canvas = document.getElementById("tr-canvas");
  var panel = document.getElementById("tr-node-panel");
  var stepBox = document.getElementById("tr-step");
  var els = [], edges = {}, users = nodes.map(function () { return []; });
  var view = {x: 0, y: 0, k: 1}, current = -1, selected = null;

  function el(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var a in attrs) e.setAttribute(a, attrs[a]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c];
    });
  }
  // Six significant digits, trailing zeros dropped; non-finite numbers arrive as strings.
  function fmt(v) {
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
    return String(parseFloat(v.toPrecision(6)));
  }
  function shapeStr(s) { return "(" + s.join(", ") + (s.length === 1 ? ",)" : ")"); }
  function label(n) {
    var head = n.name ? n.name + (n.kind === "op" ? " = " + n.op : "") : n.op;
    return "#" + n.id + " " + head;
  }
  function cut(s, k) { return s.length > k ? s.slice(0, k - 1) + "\u2026" : s; }

  // ---- drawing ----
  var svg = el("svg", {width: "100%", height: "100%", role: "img", "aria-label": "computation graph"}, canvas);
  var world = el("g", {}, svg), groupLayer = el("g", {"class": "tr-groups"}, world);
  var edgeLayer = el("g", {"class": "tr-edges"}, world);
  var nodeLayer = el("g", {}, world);
  nodes.forEach(function (n) {
    n.inputs.forEach(function (i, k) {
      users[i].push(n.id);
      var a = nodes[i], key = i + "-" + n.id;
      // the same tensor used twice by one op (h * h): a second line, bent aside
      var twice = n.inputs.indexOf(i) !== k, bend = twice ? 40 : 0;
      if (twice) key += "-" + k;
      var y0 = a.y + H / 2, y1 = n.y - H / 2, my = (y0 + y1) / 2;
      edges[key] = el("path", {d: "M" + a.x + "," + y0 + " C" + (a.x + bend) + "," + my + " " + (n.x + bend) + "," + my +
        " " + n.x + "," + y1, "class": "tr-edge"}, edgeLayer);
    });
    var g = el("g", {"class": "tr-node k-" + n.kind + (n.id === data.output ? " k-out" : ""),
      "data-node-id": n.id, transform: "translate(" + (n.x - W / 2) + "," + (n.y - H / 2) + ")",
      tabindex: 0}, nodeLayer);
    el("rect", {width: W, height: H, rx: n.kind === "op" ? 6 : 16}, g);
    var t1 = el("text", {x: W / 2, y: 22, "class": "t1"}, g);
    t1.textContent = cut((n.name ? n.name + (n.kind === "op" ? " = " + n.op : "") : n.op), 22);
    var t2 = el("text", {x: W / 2, y: 41, "class": "t2"}, g);
    t2.textContent = cut(shapeStr(n.shape) + " " + n.dtype, 26);
    var tip = el("title", {}, g);
    tip.textContent = label(n);
    els[n.id] = g;
  });

  // a box around the nodes of each module (and of each enclosing module), outer boxes wider
  var groups = {}, deepest = 0;
  nodes.forEach(function (n) {
    if (!n.module || !n.module.path) return;
    var parts = n.module.path.split(".");
    for (var d = 1; d <= parts.length; d++) {
      var p = parts.slice(0, d).join("."), g = groups[p];
      if (!g) g = groups[p] = {x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity, depth: d, type: null};
      g.x0 = Math.min(g.x0, n.x - W / 2); g.x1 = Math.max(g.x1, n.x + W / 2);
      g.y0 = Math.min(g.y0, n.y - H / 2); g.y1 = Math.max(g.y1, n.y + H / 2);
      if (d === parts.length && n.module.type) g.type = n.module.type;
      deepest = Math.max(deepest, d);
    }
  });
  Object.keys(groups).sort(function (a, b) { return groups[a].depth - groups[b].depth; }).forEach(function (p) {
    var g = groups[p], pad = 8 + 12 * (deepest - g.depth);
    var box = el("g", {"class": "tr-group", "data-module": p}, groupLayer);
    el("rect", {x: g.x0 - pad, y: g.y0 - pad - 12, width: g.x1 - g.x0 + 2 * pad,
      height: g.y1 - g.y0 + 2 * pad + 12, rx: 10}, box);
    var t = el("text", {x: g.x0 - pad + 8, y: g.y0 - pad + 2}, box);
    t.textContent = p + (g.type ? " · " + g.type : "");
  });

  function apply() {
    world.setAttribute("transform", "translate(" + view.x + "," + view.y + ") scale(" + view.k + ")");
    svg.classList.toggle("tr-far", view.k < 0.45);
  }
  function fit() {
    var r = canvas.getBoundingClientRect(), maxX = 0, maxY = 0, out = nodes[data.output];
    nodes.forEach(function (n) { maxX = Math.max(maxX, n.x + W); maxY = Math.max(maxY, n.y + H); });
    // the whole graph when it fits at a legible size; otherwise legible, with the output in view
    view.k = Math.max(Math.min(1.2, r.width / maxX, r.height / maxY), 0.6);
    view.x = maxX * view.k <= r.width ? (r.width - maxX * view.k) / 2 : r.width / 2 - out.x * view.k;
    view.y = maxY * view.k <= r.height ? 4 : r.height - (out.y + H) * view.k - 12;
    apply();
  }
  function center(id) {
    var r = canvas.getBoundingClientRect(), n = nodes[id];
    view.x = r.width / 2 - n.x * view.k; view.y = r.height / 2 - n.y * view.k;
    apply();
  }
  function visible(id) {
    var r = canvas.getBoundingClientRect(), n = nodes[id];
    var sx = n.x * view.k + view.x, sy = n.y * view.k + view.y;
    return sx > 0 && sy > 0 && sx < r.width && sy < r.height;
  }

  var drag = null;
  svg.addEventListener("pointerdown", function (e) {
    drag = {x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, moved: false};
  });
  window.addEventListener("pointermove", function (e) {
    if (!drag) return;
    var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
    if (drag.moved) { view.x = drag.vx + dx; view.y = drag.vy + dy; apply(); }
  });
  window.addEventListener("pointerup", function () { setTimeout(function () { drag = null; }, 0); });
  svg.addEventListener("wheel", function (e) {
    e.preventDefault();
    var r = svg.getBoundingClientRect(), px = e.clientX - r.left, py = e.clientY - r.top;
    var k = Math.max(0.05, Math.min(4, view.k * Math.exp(-e.deltaY * 0.0015)));
    view.x = px - (px - view.x) * k / view.k; view.y = py - (py - view.y) * k / view.k; view.k = k;
    apply();
  }, {passive: false});
  nodeLayer.addEventListener("click", function (e) {
    if (drag && drag.moved) return;
    var g = e.target.closest("[data-node-id]");
    if (g) select(+g.getAttribute("data-node-id"));
  });
  nodeLayer.addEventListener("keydown", function (e) {
    var g = e.target.closest("[data-node-id]");
    if (g && (e.key === "Enter" || e.key === " ")) { e.preventDefault(); select(+g.getAttribute("data-node-id")); }
  });

  // ---- numbers ----
  function arrayHTML(a, cls) {
    if (!a) return '<p class="' + cls + ' tr-none">none (no gradient reaches this node)</p>';
    var h = '<div class="' + cls + '">';
    if (a.values) {
      var s = a.shape, cols = s.length ? s[s.length - 1] : 1, rows = cols ? a.values.length / cols : 0;
      h += '<table class="tr-arr">';
      for (var r = 0; r < rows; r++) {
        h += "<tr>";
        for (var c = 0; c < cols; c++) {
          var v = a.values[r * cols + c];
          h += '<td class="tr-num' + (typeof v === "number" && v < 0 ? " neg" : "") + '">' + fmt(v) + "</td>";
        }
        h += "</tr>";
      }
      h += "</table>";
    }
    if (a.size > 1 && a.min !== undefined)
      h += '<p class="tr-sum">min ' + fmt(a.min) + " · mean " + fmt(a.mean) + " · max " + fmt(a.max) +
        " · std " + fmt(a.std) + (a.nonfinite ? " · " + a.nonfinite + " non-finite" : "") + "</p>";
    if (a.hist) h += histogram(a.hist);
    return h + "</div>";
  }
  function histogram(hist) {
    var c = hist.counts, m = Math.max.apply(null, c) || 1, bw = 240 / c.length, s = "";
    c.forEach(function (n, i) {
      var h = 60 * n / m;
      s += '<rect x="' + (i * bw) + '" y="' + (60 - h) + '" width="' + (bw - 1) + '" height="' + h +
        '"><title>' + fmt(hist.edges[i]) + " .. " + fmt(hist.edges[i + 1]) + ": " + n + "</title></rect>";
    });
    return '<svg class="tr-hist" width="240" height="76" role="img" aria-label="histogram">' + s +
      '<text x="0" y="74">' + fmt(hist.edges[0]) + '</text><text x="240" y="74" text-anchor="end">' +
      fmt(hist.edges[c.length]) + "</text></svg>";
  }
  function link(id) { return '<a href="#" class="tr-link" data-goto="' + id + '">' + esc(label(nodes[id])) + "</a>"; }

  function select(id) {
    if (selected !== null) els[selected].classList.remove("tr-selected");
    selected = id;
    els[id].classList.add("tr-selected");
    var n = nodes[id], src = n.source;
    var rows = [["kind", n.kind + (id === data.output ? " (output)" : "")], ["op", esc(n.op)],
      ["name", n.name ? esc(n.name) : "-"], ["shape", shapeStr(n.shape)], ["dtype", n.dtype],
      ["derivative", n.formula ? "<code>" + esc(n.formula) + "</code>" : (n.kind === "op" ? "-" : "leaf: no op")],
      ["created at", src ? "<code>" + esc(src.file) + ":" + src.line + "</code> in " + esc(src.function) +
        (src.code ? "<br><code>" + esc(src.code) + "</code>" : "") : n.kind === "op" ?
        "source unknown (build the graph inside tr.viz.recording())" : "a leaf: made by user code, not by an op"],
      ["module", n.module ? esc(n.module.path + (n.module.type ? " (" + n.module.type + ")" : "")) : "-"],
      ["inputs", n.inputs.map(link).join("<br>") || "-"],
      ["used by", users[id].filter(function (u, i, a) { return a.indexOf(u) === i; }).map(link).join("<br>") || "-"]];
    panel.innerHTML = "<h2>" + esc(label(n)) + "</h2><table class=\"tr-facts\">" + rows.map(function (r) {
      return "<tr><th>" + r[0] + "</th><td>" + r[1] + "</td></tr>"; }).join("") + "</table>" +
      "<h3>value</h3>" + arrayHTML(n.value, "tr-value") +
      "<h3>gradient <small>(d output / d this node" + (data.root_grad === "ones" && nodes[data.output].shape.length ? ", output seeded with ones" : "") +
      ")</small></h3>" + arrayHTML(n.grad, "tr-grad");
  }
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("[data-goto]");
    if (!a) return;
    e.preventDefault();
    var id = +a.getAttribute("data-goto");
    select(id);
    if (!visible(id)) center(id);
  });

  // ---- backward steps ----
  var count = document.getElementById("tr-step-count");
  function showStep(k) {
    document.querySelectorAll(".tr-current, .tr-edge-active").forEach(function (e) {
      e.classList.remove("tr-current", "tr-edge-active");
    });
    nodes.forEach(function (n) { els[n.id].classList.remove("tr-visited"); });
    current = k;
    count.textContent = (k + 1) + " / " + steps.length;
    if (k < 0) {
      stepBox.removeAttribute("data-step-node");
      stepBox.innerHTML = "<p>Backward steps: press <b>next</b>.</p>";
      return;
    }
    for (var j = 0; j < k; j++) els[steps[j].node].classList.add("tr-visited");
    var s = steps[k], n = nodes[s.node];
    els[s.node].classList.add("tr-current");
    s.arriving.forEach(function (a) {
      if (a.from === null) return;
      for (var key in edges) if (key === s.node + "-" + a.from || key.indexOf(s.node + "-" + a.from + "-") === 0)
        edges[key].classList.add("tr-edge-active");
    });
    var h = "<h2>step " + (k + 1) + " of " + steps.length + ": " + esc(label(n)) + "</h2>";
    h += "<h3>gradient arriving</h3>";
    s.arriving.forEach(function (a) {
      h += "<p>" + (a.from === null ? "seed of the output" : "from " + link(a.from)) + "</p>" + arrayHTML(a.grad, "tr-arrive");
    });
    if (s.summed) h += '<p class="tr-summed">' + s.arriving.length + " contributions summed:</p>" + arrayHTML(s.grad, "tr-total");
    if (s.leaf) {
      h += '<p class="tr-leafnote">a leaf: this gradient is stored in <code>.grad</code>; the walk ends here.</p>';
    } else {
      h += "<h3>local derivative</h3><p><code>" + esc(s.formula || n.op) + "</code></p>";
      if (s.local) s.local.forEach(function (l, i) {
        if (l) h += "<p>d out / d input " + i + " (elementwise)</p>" + arrayHTML(l, "tr-local");
      });
      h += "<h3>gradient sent to each input (upstream \u00d7 local)</h3>";
      s.sends.forEach(function (x) { h += "<p>to " + link(x.to) + "</p>" + arrayHTML(x.grad, "tr-send"); });
      if (!s.sends.length) h += "<p>none of its inputs needs a gradient</p>";
    }
    stepBox.setAttribute("data-step-node", s.node);
    stepBox.innerHTML = h;
    select(s.node);
    if (!visible(s.node)) center(s.node);
  }
  document.getElementById("tr-next").addEventListener("click", function () {
    if (current < steps.length - 1) showStep(current + 1);
  });
  document.getElementById("tr-prev").addEventListener("click", function () {
    if (current > -1) showStep(current - 1);
  });
  document.getElementById("tr-reset").addEventListener("click", function () { showStep(-1); });
  document.getElementById("tr-fit").addEventListener("click", fit);
  document.addEventListener("keydown", function (e) {
    if (e.target.closest && e.target.closest("[data-node-id]") && (e.key === "Enter" || e.key === " ")) return;
    if (e.key === "ArrowRight") document.getElementById("tr-next").click();
    if (e.key === "ArrowLeft") document.getElementById("tr-prev").click();
  });
  count.textContent = "0 / " + steps.length;
  fit();
})();
