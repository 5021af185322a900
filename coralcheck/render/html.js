/* coralcheck --format html: draws each model's graph from its JSON island (inlined by
   coralcheck/render/html.py; no library, no network).

   Layout (layered, inputs at the top): an op's layer is one below the deepest op it reads
   from; edges that skip layers pass through invisible waypoints; each layer is ordered by the
   mean position of its neighbours (sweeps down and up), then placed as close to its neighbours
   as the spacing allows (an exact least-squares fit per layer: pool-adjacent-violators).
   Runs of consecutive Edge TPU ops of one segment can be drawn as one node ("collapse"). */
(function () {
  "use strict";

  var NODE_W = 156, NODE_H = 30, GAP_X = 24, LAYER_H = 66, WAY_W = 10, IO_W = 120;
  var RUN_MIN = 3;          // shortest run of Edge TPU ops worth collapsing
  var MAX_WAYPOINTS = 60000; // beyond this, the longest edges are drawn straight
  var SEGMENT_HUES = ["#2e9e6a", "#2f7fc1", "#8a5cc2", "#b8912a", "#1b9aaa", "#c2577a"];
  var CPU_COLOURS = ["#f4845f", "#f7b267", "#e76f8a", "#ff9f43", "#d9a05b", "#f25c54",
                     "#c9a227", "#f08a5d"];
  var DRAGGED_COLOUR = "#f6c453";
  var SVGNS = "http://www.w3.org/2000/svg";

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function count(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  function human(n) {
    if (n >= 1e9) return (n / 1e9).toFixed(1) + " G";
    if (n >= 1e6) return (n / 1e6).toFixed(1) + " M";
    if (n >= 1e3) return (n / 1e3).toFixed(1) + " k";
    return String(n);
  }
  function shorten(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }

  // --- one model's graph ------------------------------------------------------------------

  function Graph(section) {
    var self = this;
    this.section = section;
    this.n = section.getAttribute("data-model");
    var d = JSON.parse(section.querySelector("script.cc-data").textContent);
    this.d = d;
    this.box = section.querySelector(".graph");
    this.svg = this.box.querySelector("svg");
    this.tip = section.querySelector(".tip");
    this.panel = section.querySelector("aside.details");
    this.count = d.ops.length;
    this.hasFlow = !!d.ins;
    this.expanded = {};
    this.selected = -1;
    this.matches = [];
    this.matchAt = -1;
    this.k = 1; this.tx = 0; this.ty = 0;

    // Who reads what: producers of tensors, predecessors and successors of ops.
    var ops = d.ops, i, j;
    this.preds = []; this.succs = [];
    for (i = 0; i < this.count; i++) { this.preds.push([]); this.succs.push([]); }
    this.producer = {};
    this.readers = {};
    this.graphInputs = {};
    if (this.hasFlow) {
      for (i = 0; i < d.graphIn.length; i++) this.graphInputs[d.graphIn[i]] = i;
      for (i = 0; i < this.count; i++) {
        var outs = d.outs[i];
        for (j = 0; j < outs.length; j++) if (outs[j] >= 0) this.producer[outs[j]] = i;
      }
      for (i = 0; i < this.count; i++) {
        var ins = d.ins[i], seen = {};
        for (j = 0; j < ins.length; j++) {
          var t = ins[j];
          if (t < 0) continue;
          (this.readers[t] = this.readers[t] || []).push(i);
          var p = this.producer[t];
          if (p !== undefined && p < i && !seen[p]) {
            seen[p] = true; this.preds[i].push(p); this.succs[p].push(i);
          }
        }
      }
    } else {
      for (i = 1; i < this.count; i++) { this.preds[i].push(i - 1); this.succs[i - 1].push(i); }
    }
    // What each root cause drags to the CPU, and the report's ranking.
    this.dragged = {};
    for (i = 0; i < this.count; i++) {
      var b = ops[i][4];
      if (b !== null && b !== undefined) (this.dragged[b] = this.dragged[b] || []).push(i);
    }
    this.rootRank = {};
    for (i = 0; i < d.roots.length; i++) this.rootRank[d.roots[i][0]] = i;
    this.boundary = {};
    (d.boundary || []).forEach(function (o) { self.boundary[o] = true; });
    this.findingsOf = {};
    d.findings.forEach(function (f) { (self.findingsOf[f[0]] = self.findingsOf[f[0]] || []).push(f); });
    // Colours: one per CPU status (in order of appearance), one per Edge TPU segment.
    this.statusColour = {};
    var next = 0;
    for (i = 0; i < this.count; i++) {
      var op = ops[i];
      if (op[1] !== "cpu" || this.statusColour[op[2]] !== undefined) continue;
      this.statusColour[op[2]] = op[4] !== null && op[4] !== undefined && !(i in this.rootRank)
        ? DRAGGED_COLOUR : CPU_COLOURS[next++ % CPU_COLOURS.length];
    }
    this.collapsed = this.count > d.collapseAbove;
    var toggle = section.querySelector(".collapse-runs");
    toggle.checked = this.collapsed;
    toggle.addEventListener("change", function () {
      self.collapsed = toggle.checked; self.expanded = {}; self.draw(true);
    });
    this.legend();
    this.wire();
    this.draw(true);
  }

  Graph.prototype.segmentOf = function (i) {
    var s = this.d.ops[i][6];
    return s === null || s === undefined ? 0 : s;
  };

  // --- the units drawn: ops, collapsed runs, graph inputs and outputs ---------------------

  Graph.prototype.units = function () {
    var d = this.d, ops = d.ops, units = [], unitOf = new Int32Array(this.count), i;
    var self = this;
    function add(u) { u.id = units.length; units.push(u); return u.id; }
    var inputs = [];
    if (this.hasFlow) {
      d.graphIn.forEach(function (t, k) {
        inputs.push(add({ kind: "in", tensor: t, w: IO_W, label: "input " + k }));
      });
    }
    this.runs = [];
    i = 0;
    while (i < this.count) {
      var start = i, end = i;
      if (ops[i][1] === "tpu") {
        var seg = this.segmentOf(i);
        while (end + 1 < this.count && ops[end + 1][1] === "tpu" && this.segmentOf(end + 1) === seg) end++;
      }
      if (this.collapsed && end - start + 1 >= RUN_MIN && !this.expanded[start]) {
        var id = add({ kind: "run", first: start, last: end, w: NODE_W + 40, segment: this.segmentOf(start) });
        for (var j = start; j <= end; j++) unitOf[j] = id;
        this.runs.push(units[id]);
      } else {
        for (j = start; j <= end; j++) unitOf[j] = add({ kind: "op", op: j, w: NODE_W, segment: this.segmentOf(j) });
      }
      i = end + 1;
    }
    var outputs = [];
    if (this.hasFlow) {
      d.graphOut.forEach(function (t, k) {
        outputs.push(add({ kind: "out", tensor: t, w: IO_W, label: "output " + k }));
      });
    }
    // Edges between units (each once), in creation order: sources before targets.
    var edges = [], seen = {};
    function link(a, b, cross) {
      if (a === b) return;
      var key = a + ":" + b;
      if (seen[key]) return;
      seen[key] = true;
      edges.push({ from: a, to: b, cross: cross });
    }
    function placementOfUnit(u) { return u.kind === "op" ? ops[u.op][1] : u.kind === "run" ? "tpu" : "io"; }
    function crosses(a, b) {
      var pa = placementOfUnit(units[a]), pb = placementOfUnit(units[b]);
      return pa !== "io" && pb !== "io" && pa !== pb;
    }
    for (i = 0; i < this.count; i++) {
      var preds = this.preds[i];
      for (var q = 0; q < preds.length; q++) {
        link(unitOf[preds[q]], unitOf[i], crosses(unitOf[preds[q]], unitOf[i]));
      }
      if (this.hasFlow) {
        var ins = d.ins[i];
        for (q = 0; q < ins.length; q++) {
          var k = this.graphInputs[ins[q]];
          if (k !== undefined && this.producer[ins[q]] === undefined) link(inputs[k], unitOf[i], false);
        }
      }
    }
    if (this.hasFlow) {
      d.graphOut.forEach(function (t, k) {
        var p = self.producer[t];
        if (p !== undefined) link(unitOf[p], outputs[k], false);
        else if (self.graphInputs[t] !== undefined) link(inputs[self.graphInputs[t]], outputs[k], false);
      });
    }
    this.unitList = units;
    this.unitOf = unitOf;
    this.edges = edges;
  };

  // --- layout -------------------------------------------------------------------------------

  // Least-squares placement of one ordered layer: centres as close to `want` as the widths
  // allow (pool adjacent violators on want minus the minimum offsets).
  function place(want, widths) {
    var n = want.length, offset = new Float64Array(n), i;
    for (i = 1; i < n; i++) offset[i] = offset[i - 1] + (widths[i - 1] + widths[i]) / 2 + GAP_X;
    var sums = [], counts = [], top = -1;
    for (i = 0; i < n; i++) {
      sums[++top] = want[i] - offset[i]; counts[top] = 1;
      while (top > 0 && sums[top - 1] / counts[top - 1] > sums[top] / counts[top]) {
        sums[top - 1] += sums[top]; counts[top - 1] += counts[top]; top--;
      }
    }
    var out = new Float64Array(n), at = 0;
    for (var b = 0; b <= top; b++) {
      var v = sums[b] / counts[b];
      for (var c = 0; c < counts[b]; c++, at++) out[at] = v + offset[at];
    }
    return out;
  }

  Graph.prototype.layout = function () {
    var units = this.unitList, edges = this.edges, i, e;
    var inEdges = units.map(function () { return []; });
    edges.forEach(function (e) { inEdges[e.to].push(e); });
    // Layers: one below the deepest source (inputs on layer 0; ops from layer 1 when there are
    // inputs, so that the inputs stand above everything).
    var firstOpLayer = units.length && units[0].kind === "in" ? 1 : 0;
    var depth = 0;
    for (i = 0; i < units.length; i++) {
      var u = units[i], layer = u.kind === "in" ? 0 : firstOpLayer;
      for (e = 0; e < inEdges[i].length; e++) {
        var l = units[inEdges[i][e].from].layer + 1;
        if (l > layer) layer = l;
      }
      u.layer = layer;
      if (layer > depth) depth = layer;
    }
    // Nodes per layer: units, then waypoints of edges that skip layers.
    var nodes = [], layers = [];
    for (i = 0; i <= depth; i++) layers.push([]);
    units.forEach(function (u) { u.node = nodes.length; nodes.push({ unit: u, w: u.w, up: [], down: [] }); });
    units.forEach(function (u) { layers[u.layer].push(u.node); });
    var budget = MAX_WAYPOINTS;
    // Shorter edges get waypoints first: they matter most for the order.
    var order = edges.slice().sort(function (a, b) {
      return (units[a.to].layer - units[a.from].layer) - (units[b.to].layer - units[b.from].layer);
    });
    order.forEach(function (e) {
      var a = units[e.from], b = units[e.to], span = b.layer - a.layer;
      e.path = [a.node];
      if (span > 1 && span - 1 <= budget) {
        budget -= span - 1;
        for (var l = a.layer + 1; l < b.layer; l++) {
          var w = nodes.length;
          nodes.push({ unit: null, w: WAY_W, up: [], down: [] });
          layers[l].push(w);
          e.path.push(w);
        }
      }
      e.path.push(b.node);
      for (var s = 0; s + 1 < e.path.length; s++) {
        var x = nodes[e.path[s]], y = nodes[e.path[s + 1]];
        if (span === 1 || e.path.length > 2) { x.down.push(e.path[s + 1]); y.up.push(e.path[s]); }
      }
    });
    // Order each layer by its neighbours' mean position: down, up, down, up, down.
    var pos = new Float64Array(nodes.length);
    layers.forEach(function (layer) { layer.forEach(function (v, p) { pos[v] = p; }); });
    function sweep(layer, side) {
      var keys = {};
      layer.forEach(function (v) {
        var nb = nodes[v][side];
        if (!nb.length) { keys[v] = pos[v]; return; }
        var s = 0;
        for (var q = 0; q < nb.length; q++) s += pos[nb[q]];
        keys[v] = s / nb.length;
      });
      layer.sort(function (a, b) { return keys[a] - keys[b] || pos[a] - pos[b]; });
      layer.forEach(function (v, p) { pos[v] = p; });
    }
    for (var it = 0; it < 5; it++) {
      if (it % 2 === 0) for (i = 1; i < layers.length; i++) sweep(layers[i], "up");
      else for (i = layers.length - 2; i >= 0; i--) sweep(layers[i], "down");
    }
    // Coordinates: each layer placed near its neighbours, alternately above and below.
    var x = new Float64Array(nodes.length);
    layers.forEach(function (layer) {
      var widths = layer.map(function (v) { return nodes[v].w; });
      var placed = place(layer.map(function () { return 0; }), widths);
      layer.forEach(function (v, p) { x[v] = placed[p]; });
    });
    function align(layer, side) {
      if (!layer.length) return;
      var want = layer.map(function (v) {
        var nb = nodes[v][side];
        if (!nb.length) return x[v];
        var s = 0;
        for (var q = 0; q < nb.length; q++) s += x[nb[q]];
        return s / nb.length;
      });
      var placed = place(want, layer.map(function (v) { return nodes[v].w; }));
      layer.forEach(function (v, p) { x[v] = placed[p]; });
    }
    for (it = 0; it < 6; it++) {
      if (it % 2 === 0) for (i = 1; i < layers.length; i++) align(layers[i], "up");
      else for (i = layers.length - 2; i >= 0; i--) align(layers[i], "down");
    }
    var minX = Infinity, maxX = -Infinity;
    nodes.forEach(function (nd, v) {
      if (x[v] - nd.w / 2 < minX) minX = x[v] - nd.w / 2;
      if (x[v] + nd.w / 2 > maxX) maxX = x[v] + nd.w / 2;
    });
    var shift = 40 - minX;
    nodes.forEach(function (nd, v) {
      nd.x = x[v] + shift;
      nd.y = 40 + (nd.unit ? nd.unit.layer : 0) * LAYER_H;
    });
    layers.forEach(function (layer, l) { layer.forEach(function (v) { nodes[v].y = 40 + l * LAYER_H; }); });
    units.forEach(function (u) { u.x = nodes[u.node].x; u.y = nodes[u.node].y; });
    this.nodes = nodes;
    this.layers = layers;
    this.width = maxX - minX + 80 + 260;  // room on the right for the drag arcs
    this.height = 40 + (depth + 1) * LAYER_H + 40;
  };

  // --- drawing ------------------------------------------------------------------------------

  Graph.prototype.opLabel = function (i) { return this.d.ops[i][0].replace(/^CUSTOM:/, ""); };

  Graph.prototype.render = function () {
    var self = this, d = this.d, ops = d.ops, nodes = this.nodes, out = [];
    var H2 = NODE_H / 2;
    // Edge TPU segments: one shaded band per segment and layer (merged where they line up).
    var bands = {};
    this.unitList.forEach(function (u) {
      if (!u.segment || (u.kind === "op" && ops[u.op][1] !== "tpu")) return;
      var b = bands[u.segment] = bands[u.segment] || {};
      var row = b[u.layer] = b[u.layer] || [Infinity, -Infinity];
      row[0] = Math.min(row[0], u.x - u.w / 2 - 12);
      row[1] = Math.max(row[1], u.x + u.w / 2 + 12);
    });
    out.push('<g class="segments">');
    Object.keys(bands).forEach(function (s) {
      var hue = SEGMENT_HUES[(s - 1) % SEGMENT_HUES.length], rows = bands[s];
      var layers = Object.keys(rows).map(Number).sort(function (a, b) { return a - b; });
      var first = true, open = null;
      function flush() {
        if (!open) return;
        var y0 = 40 + open.from * LAYER_H - LAYER_H / 2 - (first ? 8 : 0), y1 = 40 + open.to * LAYER_H + LAYER_H / 2;
        out.push('<rect class="segment" data-segment="' + s + '" x="' + open.x0.toFixed(1) + '" y="' + y0 +
          '" width="' + (open.x1 - open.x0).toFixed(1) + '" height="' + (y1 - y0) + '" rx="10" fill="' + hue +
          '" fill-opacity="0.13"/>');
        if (first) {
          out.push('<text class="segment-label" x="' + (open.x0 + 8).toFixed(1) + '" y="' + (y0 + 14) +
            '" fill="' + hue + '">Edge TPU segment ' + s + "</text>");
          first = false;
        }
        open = null;
      }
      layers.forEach(function (l) {
        var r = rows[l];
        if (open && open.to === l - 1 && Math.abs(open.x0 - r[0]) < 0.5 && Math.abs(open.x1 - r[1]) < 0.5) open.to = l;
        else { flush(); open = { from: l, to: l, x0: r[0], x1: r[1] }; }
      });
      flush();
    });
    out.push("</g><g class=\"edges\">");
    this.edges.forEach(function (e, k) {
      var p = e.path, a = nodes[p[0]], dpath = "M" + a.x.toFixed(1) + " " + (a.y + H2);
      for (var s = 1; s < p.length; s++) {
        var from = nodes[p[s - 1]], to = nodes[p[s]];
        var y0 = s === 1 ? from.y + H2 : from.y, y1 = s === p.length - 1 ? to.y - H2 : to.y;
        var ym = (y0 + y1) / 2;
        dpath += "C" + from.x.toFixed(1) + " " + ym + " " + to.x.toFixed(1) + " " + ym + " " + to.x.toFixed(1) + " " + y1;
      }
      out.push('<path class="edge' + (e.cross ? " cross" : "") + '" data-edge="' + k + '" data-from="' + e.from +
        '" data-to="' + e.to + '" d="' + dpath + '"/>');
    });
    out.push('</g><g class="drags">');
    // Each op a root cause drags to the CPU, linked to it by an arc on the right.
    var drags = 0;
    Object.keys(this.dragged).forEach(function (b) {
      var ub = self.unitList[self.unitOf[b]];
      self.dragged[b].forEach(function (o) {
        var uo = self.unitList[self.unitOf[o]];
        if (ub === uo) return;
        var x0 = ub.x + ub.w / 2, x1 = uo.x + uo.w / 2, bend = Math.max(x0, x1) + 40 + Math.min(200, Math.abs(uo.y - ub.y) * 0.15);
        out.push('<path class="drag" data-from-op="' + b + '" data-to-op="' + o + '" d="M' + x0.toFixed(1) + " " + ub.y +
          "C" + bend.toFixed(1) + " " + ub.y + " " + bend.toFixed(1) + " " + uo.y + " " + x1.toFixed(1) + " " + uo.y + '"/>');
        drags++;
      });
    });
    out.push('</g><g class="nodes">');
    var hidden = [];
    this.unitList.forEach(function (u) {
      var x = (u.x - u.w / 2).toFixed(1), y = (u.y - H2).toFixed(1);
      var at = ' transform="translate(' + x + "," + y + ')"';
      if (u.kind === "op") {
        var i = u.op, op = ops[i], cls = "op " + op[1];
        var fill = "";
        if (op[1] === "cpu") fill = ' style="fill:' + self.statusColour[op[2]] + '"';
        if (i in self.rootRank) cls += " root";
        if (self.boundary[i]) cls += " boundary";
        out.push('<g class="' + cls + '" id="m' + self.n + "-op-" + i + '" data-op="' + i + '" data-placement="' + esc(op[1]) +
          '"' + at + '><rect width="' + u.w + '" height="' + NODE_H + '" rx="6"' + fill + "/>" +
          '<text x="8" y="19">' + esc(shorten(self.opLabel(i), 17)) + "</text>" +
          '<text class="idx" x="' + (u.w - 6) + '" y="19" text-anchor="end">' + i + "</text>");
        if (i in self.rootRank) {
          var n = (self.dragged[i] || []).length;
          var badge = self.rootRank[i] === 0 ? "✖ blocks " + count(n, "op") : "✖ root cause";
          out.push('<text class="badge-text" x="0" y="-5">' + esc(badge) + "</text>");
        }
        out.push("</g>");
      } else if (u.kind === "run") {
        out.push('<g class="run" data-run="' + u.first + "-" + u.last + '" data-segment="' + u.segment + '"' + at +
          '><rect width="' + u.w + '" height="' + NODE_H + '" rx="6"/><text x="8" y="19">' +
          esc(count(u.last - u.first + 1, "op") + " on the Edge TPU") + '</text><text class="idx" x="' + (u.w - 6) +
          '" y="19" text-anchor="end">' + u.first + "–" + u.last + "</text></g>");
        for (var j = u.first; j <= u.last; j++) {
          hidden.push('<g class="op tpu" data-op="' + j + '" data-placement="tpu" data-run="' + u.first + '"></g>');
        }
      } else {
        var t = d.tensors[u.tensor];
        out.push('<g class="io" data-tensor="' + u.tensor + '"' + at + '><rect width="' + u.w + '" height="' + NODE_H +
          '" rx="15"/><text x="' + u.w / 2 + '" y="19" text-anchor="middle">' + esc(shorten(u.label + ": " + (t ? t[0] : ""), 20)) +
          "</text></g>");
      }
    });
    out.push('</g><g class="members" display="none">' + hidden.join("") + "</g>");
    this.svg.innerHTML = '<g class="viewport">' + out.join("") + "</g>";
    this.viewport = this.svg.firstChild;
    this.drawnDrags = drags;
  };

  Graph.prototype.draw = function (resetView) {
    var t0 = performance.now();
    this.units();
    this.layout();
    this.render();
    if (resetView) this.initialView(); else this.apply();
    if (this.selected >= 0) this.select(this.selected, false);
    this.section.setAttribute("data-layout-ms", (performance.now() - t0).toFixed(1));
    this.section.setAttribute("data-ready", "true");
  };

  // --- view: pan and zoom -------------------------------------------------------------------

  Graph.prototype.apply = function () {
    this.viewport.setAttribute("transform", "translate(" + this.tx.toFixed(1) + "," + this.ty.toFixed(1) +
      ") scale(" + this.k.toFixed(4) + ")");
  };
  Graph.prototype.fit = function () {
    var w = this.box.clientWidth || 800, h = this.box.clientHeight || 500;
    this.k = Math.min(1.2, w / this.width, h / this.height);
    this.tx = (w - this.width * this.k) / 2; this.ty = 8;
    this.apply();
  };
  Graph.prototype.centerOn = function (x, y, k) {
    var w = this.box.clientWidth || 800, h = this.box.clientHeight || 500;
    if (k) this.k = k;
    this.tx = w / 2 - x * this.k; this.ty = h / 2 - y * this.k;
    this.apply();
  };
  Graph.prototype.initialView = function () {
    var w = this.box.clientWidth || 800, h = this.box.clientHeight || 500;
    var k = Math.min(1, w / this.width), ops = this.d.ops;
    if (this.height * k <= h) return this.fit();
    var cpu = this.unitList.filter(function (u) { return u.kind === "op" && ops[u.op][1] === "cpu"; });
    this.k = Math.max(k, 0.75);
    if (!cpu.length) { this.tx = Math.max(0, (w - this.width * this.k) / 2); this.ty = 8; return this.apply(); }
    // A tall graph with ops on the CPU: open on them (the last one near the bottom edge when
    // they do not all fit), with the Edge TPU ops that feed them above.
    cpu.sort(function (a, b) { return a.y - b.y; });
    var top = cpu[0].y, bottom = cpu[cpu.length - 1].y, x = 0;
    cpu.forEach(function (u) { x += u.x; });
    var fits = (bottom - top) * this.k <= h - 120;
    this.centerOn(x / cpu.length, fits ? (top + bottom) / 2 : bottom + (90 - h / 2) / this.k);
  };
  Graph.prototype.zoom = function (factor, cx, cy) {
    var k = Math.max(0.02, Math.min(4, this.k * factor));
    if (cx === undefined) { cx = this.box.clientWidth / 2; cy = this.box.clientHeight / 2; }
    this.tx = cx - (cx - this.tx) * (k / this.k);
    this.ty = cy - (cy - this.ty) * (k / this.k);
    this.k = k;
    this.apply();
  };

  // --- details ------------------------------------------------------------------------------

  Graph.prototype.tensorRows = function (list) {
    var d = this.d, rows = [];
    list.forEach(function (t) {
      if (t < 0) return;
      var tt = d.tensors[t];
      if (!tt) return;
      var q = tt[3] === null ? "not quantized" : tt[5] ? "per channel (" + tt[5] + " scales)"
        : "scale " + Number(tt[3]).toPrecision(6) + ", zero point " + tt[4];
      rows.push("<li><code>" + esc(tt[0]) + "</code>" + (tt[6] ? ' <span class="dim">(constant)</span>' : "") +
        '<br><span class="dim">' + esc(tt[1].toLowerCase()) + " · " + esc(tt[2].join("x") || "scalar") + " · " +
        esc(q) + "</span></li>");
    });
    return rows.length ? '<ul class="tensors">' + rows.join("") + "</ul>" : '<span class="dim">none</span>';
  };

  Graph.prototype.opDetails = function (i) {
    var d = this.d, op = d.ops[i], self = this, parts = [];
    var where = op[1] === "tpu" ? "Edge TPU" + (op[6] ? ", segment " + op[6] : "") : "CPU";
    parts.push('<p class="op-title">op ' + i + " " + esc(op[0]) + "</p><dl class=\"op-info\">");
    parts.push("<dt>placement</dt><dd>" + esc(where) + (this.boundary[i] ? " (exchanges data with the Edge TPU)" : "") + "</dd>");
    parts.push("<dt>status</dt><dd>" + esc(d.statuses[op[2]]) + "</dd>");
    if (op[3]) parts.push('<dt>reason</dt><dd class="reason">' + esc(op[3]) + "</dd>");
    if (op[4] !== null && op[4] !== undefined) {
      parts.push("<dt>blamed on</dt><dd>" + this.link(op[4]) + "</dd>");
    }
    if (i in this.rootRank) {
      var r = d.roots[this.rootRank[i]], dr = this.dragged[i] || [];
      parts.push("<dt>root cause</dt><dd>#" + (this.rootRank[i] + 1) + " of " + d.roots.length +
        ": fixing it alone brings " + count(r[1], "op") + " back to the Edge TPU</dd>");
      if (dr.length) {
        parts.push("<dt>drags</dt><dd>" + dr.slice(0, 30).map(function (o) { return self.link(o); }).join(", ") +
          (dr.length > 30 ? ", … (" + dr.length + ")" : "") + "</dd>");
      }
    }
    parts.push("<dt>MACs</dt><dd>" + human(op[5]) + "</dd>");
    if (this.hasFlow) {
      parts.push("<dt>inputs</dt><dd>" + this.tensorRows(d.ins[i]) + "</dd>");
      parts.push("<dt>outputs</dt><dd>" + this.tensorRows(d.outs[i]) + "</dd>");
    }
    var fs = this.findingsOf[i];
    if (fs) {
      parts.push("<dt>findings</dt><dd><ul>" + fs.map(function (f) {
        return '<li class="finding ' + esc(f[1]) + '">' + esc(f[1]) + " <code>" + esc(f[2]) + "</code> " + esc(f[3]) + "</li>";
      }).join("") + "</ul></dd>");
    }
    parts.push("</dl>");
    return parts.join("");
  };
  Graph.prototype.runDetails = function (u) {
    return '<p class="op-title">ops ' + u.first + "–" + u.last + " on the Edge TPU</p><p>" +
      count(u.last - u.first + 1, "op") + " of segment " + u.segment + ", collapsed. Click to expand.</p>";
  };
  Graph.prototype.link = function (i) {
    return '<a href="#m' + this.n + "-op-" + i + '" class="goto" data-goto="' + i + '">op ' + i + " " + esc(this.d.ops[i][0]) + "</a>";
  };

  Graph.prototype.showTip = function (html, ev) {
    var tip = this.tip;
    tip.innerHTML = html;
    tip.hidden = false;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var x = ev.clientX + 16, y = ev.clientY + 16;
    if (x + w > window.innerWidth - 8) x = Math.max(8, ev.clientX - w - 16);
    if (y + h > window.innerHeight - 8) y = Math.max(8, window.innerHeight - h - 8);
    tip.style.left = x + "px"; tip.style.top = y + "px";
  };

  // --- selection and search -----------------------------------------------------------------

  Graph.prototype.nodeOf = function (i) {
    return this.svg.querySelector('g.op[data-op="' + i + '"]:not([data-run])');
  };
  Graph.prototype.reveal = function (i) {
    // An op inside a collapsed run: expand that run first.
    var u = this.unitList[this.unitOf[i]];
    if (u.kind === "run") { this.expanded[u.first] = true; this.draw(false); }
  };
  Graph.prototype.select = function (i, center) {
    var svg = this.svg;
    svg.querySelectorAll(".selected, .neighbour, .lit").forEach(function (el) {
      el.classList.remove("selected", "neighbour", "lit");
    });
    this.selected = i;
    if (i < 0) return;
    this.reveal(i);
    var node = this.nodeOf(i);
    if (!node) return;
    node.classList.add("selected");
    var uid = this.unitOf[i];
    svg.querySelectorAll('path.edge[data-from="' + uid + '"], path.edge[data-to="' + uid + '"]').forEach(function (p) {
      p.classList.add("lit");
    });
    svg.querySelectorAll('path.drag[data-from-op="' + i + '"], path.drag[data-to-op="' + i + '"]').forEach(function (p) {
      p.classList.add("lit");
    });
    this.panel.innerHTML = this.opDetails(i);
    if (center) {
      var u = this.unitList[uid];
      this.centerOn(u.x, u.y, Math.max(this.k, 0.8));
    }
  };
  Graph.prototype.search = function (text, step) {
    var q = text.trim(), found = [], self = this, d = this.d, i;
    if (!q) { this.matches = []; this.mark(); this.section.querySelector(".search-result").textContent = ""; return; }
    var num = /^#?(\d+)$/.exec(q);
    if (num) {
      if (+num[1] < this.count) found.push(+num[1]);
    } else if (this.hasFlow) {
      var needle = q.toLowerCase(), hit = {};
      d.tensors.forEach(function (t, ti) {
        if (t[0].toLowerCase().indexOf(needle) < 0) return;
        if (self.producer[ti] !== undefined) hit[self.producer[ti]] = true;
        (self.readers[ti] || []).forEach(function (o) { hit[o] = true; });
      });
      for (i = 0; i < this.count; i++) if (hit[i] || d.ops[i][0].toLowerCase() === needle) found.push(i);
    } else {
      for (i = 0; i < this.count; i++) if (d.ops[i][0].toLowerCase() === q.toLowerCase()) found.push(i);
    }
    var same = found.join() === this.matches.join();
    this.matches = found;
    this.matchAt = same && step ? (this.matchAt + 1) % Math.max(found.length, 1) : 0;
    var out = this.section.querySelector(".search-result");
    if (!found.length) { out.textContent = "no op matches"; this.mark(); return; }
    out.textContent = (this.matchAt + 1) + " of " + count(found.length, "op") + (found.length > 1 ? " (Enter: next)" : "");
    this.select(found[this.matchAt], true);
    this.mark();
  };
  Graph.prototype.mark = function () {
    var self = this;
    this.svg.querySelectorAll(".match").forEach(function (el) { el.classList.remove("match"); });
    this.matches.forEach(function (i) { var n = self.nodeOf(i); if (n) n.classList.add("match"); });
  };

  // --- events -------------------------------------------------------------------------------

  Graph.prototype.wire = function () {
    var self = this, box = this.box, drag = null;
    box.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var r = box.getBoundingClientRect();
      self.zoom(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
    }, { passive: false });
    box.addEventListener("pointerdown", function (ev) {
      if (ev.button !== 0) return;
      drag = { x: ev.clientX, y: ev.clientY, tx: self.tx, ty: self.ty, moved: false };
    });
    box.addEventListener("pointermove", function (ev) {
      if (drag) {
        var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
        if (!drag.moved && Math.abs(dx) + Math.abs(dy) > 3) {
          drag.moved = true; box.classList.add("panning"); box.setPointerCapture(ev.pointerId);
          self.tip.hidden = true;
        }
        if (drag.moved) { self.tx = drag.tx + dx; self.ty = drag.ty + dy; self.apply(); return; }
      }
      var g = ev.target.closest ? ev.target.closest("g.op, g.run") : null;
      if (!g) { self.tip.hidden = true; return; }
      if (g.classList.contains("run")) {
        var first = +g.getAttribute("data-run").split("-")[0];
        self.showTip(self.runDetails(self.unitList[self.unitOf[first]]), ev);
      } else {
        self.showTip(self.opDetails(+g.getAttribute("data-op")), ev);
      }
    });
    box.addEventListener("pointerleave", function () { self.tip.hidden = true; });
    box.addEventListener("pointerup", function (ev) {
      var wasDrag = drag && drag.moved;
      drag = null; box.classList.remove("panning");
      if (wasDrag) return;
      var g = ev.target.closest ? ev.target.closest("g.op, g.run") : null;
      if (!g) return;
      if (g.classList.contains("run")) {
        self.expanded[+g.getAttribute("data-run").split("-")[0]] = true;
        self.draw(false);
      } else {
        self.select(+g.getAttribute("data-op"), false);
      }
    });
    box.addEventListener("keydown", function (ev) {
      var step = 60;
      if (ev.key === "+" || ev.key === "=") self.zoom(1.25);
      else if (ev.key === "-") self.zoom(0.8);
      else if (ev.key === "ArrowLeft") { self.tx += step; self.apply(); }
      else if (ev.key === "ArrowRight") { self.tx -= step; self.apply(); }
      else if (ev.key === "ArrowUp") { self.ty += step; self.apply(); }
      else if (ev.key === "ArrowDown") { self.ty -= step; self.apply(); }
      else return;
      ev.preventDefault();
    });
    var q = function (s) { return self.section.querySelector(s); };
    q(".zoom-in").addEventListener("click", function () { self.zoom(1.25); });
    q(".zoom-out").addEventListener("click", function () { self.zoom(0.8); });
    q(".fit").addEventListener("click", function () { self.fit(); });
    var search = q(".search");
    search.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { ev.preventDefault(); self.search(search.value, true); }
    });
    search.addEventListener("input", function () { self.search(search.value, false); });
    // Links to ops (findings, wins, details): select the op and bring the graph into view.
    this.section.addEventListener("click", function (ev) {
      var a = ev.target.closest ? ev.target.closest("a[data-goto]") : null;
      if (!a) return;
      ev.preventDefault();
      self.select(+a.getAttribute("data-goto"), true);
      box.scrollIntoView({ block: "nearest" });
    });
  };

  Graph.prototype.legend = function () {
    var d = this.d, self = this, items = [], seen = {}, counts = {};
    var segs = {};
    d.ops.forEach(function (op) {
      if (op[1] === "tpu") segs[op[6] || 0] = (segs[op[6] || 0] || 0) + 1;
      else counts[op[2]] = (counts[op[2]] || 0) + 1;
    });
    var numbers = Object.keys(segs);
    if (numbers.length > 4) {  // one entry for many segments (compiled with -a)
      var total = 0;
      numbers.forEach(function (s) { total += segs[s]; });
      items.push("<span>" + SEGMENT_HUES.map(function (hue) {
        return '<span class="swatch" style="background:' + hue + ';opacity:.5;margin-right:0"></span>';
      }).join("") + " " + numbers.length + " Edge TPU segments, each its own shade (" + count(total, "op") + ")</span>");
    } else {
      numbers.forEach(function (s) {
        var hue = SEGMENT_HUES[(Math.max(1, s) - 1) % SEGMENT_HUES.length];
        items.push('<span><span class="swatch" style="background:' + hue + ';opacity:.5"></span>Edge TPU' +
          (+s ? " segment " + s : "") + " (" + count(segs[s], "op") + ")</span>");
      });
    }
    d.ops.forEach(function (op) {
      if (op[1] !== "cpu" || seen[op[2]]) return;
      seen[op[2]] = true;
      items.push('<span><span class="swatch" style="background:' + self.statusColour[op[2]] + '"></span>CPU: ' +
        esc(d.statuses[op[2]]) + " (" + counts[op[2]] + ")</span>");
    });
    if (d.roots.length) items.push('<span><span class="swatch" style="border:3px solid var(--root)"></span>✖ root cause (its own reason keeps it off the Edge TPU)</span>');
    if (Object.keys(this.dragged).length) items.push('<span style="color:var(--drag)">- - - dragged to the CPU by a root cause</span>');
    if (d.ops.some(function (op) { return op[1] === "cpu"; }) && d.ops.some(function (op) { return op[1] === "tpu"; })) {
      items.push('<span style="color:var(--edge-cross)">—— data crossing between the Edge TPU and the CPU</span>');
    }
    this.section.querySelector(".legend").innerHTML = items.join("");
  };

  // --- the page -----------------------------------------------------------------------------

  function theme() {
    var root = document.documentElement, button = document.querySelector("button.theme");
    if (!button) return;
    button.addEventListener("click", function () {
      var dark = root.getAttribute("data-theme") ? root.getAttribute("data-theme") === "dark"
        : window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
      root.setAttribute("data-theme", dark ? "light" : "dark");
    });
  }

  function start() {
    theme();
    var graphs = [];
    document.querySelectorAll("section.model").forEach(function (section) {
      if (section.querySelector(".graph")) graphs.push(new Graph(section));
    });
    window.coralcheck = { graphs: graphs };
    // A link to an op in the address (#m0-op-12): show it.
    var m = /^#m(\d+)-op-(\d+)$/.exec(location.hash);
    if (m && graphs[+m[1]]) graphs[+m[1]].select(+m[2], true);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
