// Max-pool routing (lessons/max-pool.md): pointing at an output shows its window and the input
// that won it; the backward-pass toggle shows dL/dy and where each of its values lands in dL/dx:
// on the window's winner only. Ties are broken as reference.pool breaks them (the first maximum in
// row-major order): every number and every winner here is reference.pool's, computed at build
// time by docs/_helpers/explorables.py pool_data().
(function () {
  "use strict";
  var X = window.Explorables;

  function build(root, data) {
    var start = data.start;
    var state = { input: start.input, window: start.window, cell: start.cell, backward: start.backward };
    var controls = X.el("div", { "class": "xp-controls" }, root);
    X.select(controls, "input", data.inputs.map(function (i) { return i.name; }), state.input, function (k) {
      state.input = k;
      if (!data.inputs[k].cases[state.window]) state.window = 0;
      state.cell = [0, 0];
      draw();
    });
    var windowSlot = X.el("span", {}, controls);
    var toggle = X.el("button", { type: "button", "class": "xp-toggle", "aria-pressed": String(state.backward) },
      controls, "backward pass");
    toggle.addEventListener("click", function () {
      state.backward = !state.backward;
      toggle.setAttribute("aria-pressed", String(state.backward));
      draw();
    });
    var grids = X.el("div", { "class": "xp-row" }, root);
    var readout = X.el("div", { "class": "xp-readout", "aria-live": "polite" }, root);
    var view = null;

    function windowSelect() {
      X.clear(windowSlot);
      var spec = data.inputs[state.input];
      var usable = [];
      data.windows.forEach(function (w, index) { if (spec.cases[index]) usable.push(index); });
      X.select(windowSlot, "window", usable.map(function (index) { return data.windows[index].name; }),
        usable.indexOf(state.window), function (k) { state.window = usable[k]; state.cell = [0, 0]; draw(); });
    }

    function labelWidth(values) {
      return Math.max.apply(null, values.map(function (v) { return X.num(v).length; }));
    }

    function grid(title, name, rows, cols, values, cellClass) {
      var widest = labelWidth(values);
      var pane = X.panel(grids, title, cols, rows, X.cellWidth(widest));
      pane.svg.setAttribute("data-grid", name);
      var cells = X.numberCells(pane.svg, rows, cols, function (r, c) { return X.num(values[r * cols + c]); },
        cellClass);
      return { pane: pane, cells: cells };
    }

    function draw() {
      windowSelect();
      var spec = data.inputs[state.input], win = data.windows[state.window], cs = spec.cases[state.window];
      var H = spec.height, W = spec.width, h = cs.height, w = cs.width;
      X.clear(grids);
      var input = grid("x (" + H + " \u00d7 " + W + ")", "x", H, W, spec.x, function (r, c) {
        // rows and columns that no window reaches (floor mode) are marked
        return (r >= (h - 1) * win.stride + win.kernel || c >= (w - 1) * win.stride + win.kernel) ? "xp-unused" : "";
      });
      var windowRect = X.outline(input.pane.svg, 0, 0, win.kernel, win.kernel, "xp-window");
      var output = grid("y (" + h + " \u00d7 " + w + ")", "y", h, w, cs.y);
      var chosen = [X.outline(output.pane.svg, 0, 0, 1, 1, "xp-chosen")];
      var picks = [X.picker(output.pane.svg, h, w, "output y", show)];
      var gradients = null, upstream = null;
      if (state.backward) {
        upstream = grid("dL/dy", "dy", h, w, cs.dy, function () { return "xp-upstream"; });
        chosen.push(X.outline(upstream.pane.svg, 0, 0, 1, 1, "xp-chosen"));
        picks.push(X.picker(upstream.pane.svg, h, w, "upstream gradient dL/dy", show));
        gradients = grid("dL/dx (" + H + " \u00d7 " + W + ")", "dx", H, W, cs.dx, function (r, c) {
          return cs.dx[r * W + c] !== 0 ? "xp-received" : "";
        });
      }
      view = { spec: spec, win: win, cs: cs, input: input, windowRect: windowRect, chosen: chosen, picks: picks,
        gradients: gradients };
      var cell = state.cell;
      picks[0].set(Math.min(cell[0], h - 1), Math.min(cell[1], w - 1));
    }

    function at(r, c) {
      return "x[" + r + ", " + c + "]";
    }

    function show(i, j) {
      state.cell = [i, j];
      var spec = view.spec, win = view.win, cs = view.cs, W = spec.width, k = win.kernel, s = win.stride;
      var n = i * cs.width + j, winner = cs.winner[n];
      view.picks.forEach(function (p) { var now = p.get(); if (now[0] !== i || now[1] !== j) p.set(i, j); });
      view.windowRect.setAttribute("x", j * s + 0.06);
      view.windowRect.setAttribute("y", i * s + 0.06);
      view.chosen.forEach(function (rect) { rect.setAttribute("x", j + 0.06); rect.setAttribute("y", i + 0.06); });
      var inWindow = [], ties = [];
      for (var u = 0; u < k; u++) {
        for (var v = 0; v < k; v++) {
          var value = spec.x[(i * s + u) * W + j * s + v];
          inWindow.push(X.num(value));
          if (value === cs.y[n]) ties.push([i * s + u, j * s + v]);
        }
      }
      [view.input.cells, view.gradients && view.gradients.cells].forEach(function (layer) {
        if (!layer) return;
        Array.prototype.forEach.call(layer.children, function (g) {
          var r = Number(g.getAttribute("data-row")), c = Number(g.getAttribute("data-col"));
          var isWinner = r === winner[0] && c === winner[1];
          g.firstChild.classList.toggle("xp-winner", isWinner);
          var tied = ties.some(function (t) { return t[0] === r && t[1] === c; });
          g.firstChild.classList.toggle("xp-tie", !isWinner && tied && layer === view.input.cells);
        });
      });

      X.clear(readout);
      var line = X.el("p", {}, readout);
      line.appendChild(document.createTextNode("y[" + i + ", " + j + "] = max(" + inWindow.join(", ") + ") = " +
        X.num(cs.y[n]) + ", the value at "));
      X.el("span", { "class": "xp-winner-name", "data-row": winner[0], "data-col": winner[1] }, line,
        at(winner[0], winner[1]));
      line.appendChild(document.createTextNode("."));
      if (ties.length > 1) {
        X.el("p", { "class": "xp-ties" }, readout, "The maximum " + X.num(cs.y[n]) + " appears " + ties.length +
          " times in this window (" + ties.map(function (t) { return at(t[0], t[1]); }).join(", ") +
          "): the first in row-major order wins, as in PyTorch.");
      }
      if (state.backward) {
        var sources = [];
        cs.winner.forEach(function (other, m) {
          if (other[0] === winner[0] && other[1] === winner[1]) sources.push(X.num(cs.dy[m]));
        });
        var total = cs.dx[winner[0] * W + winner[1]];
        var back = X.el("p", { "class": "xp-backward" }, readout,
          "dL/dy[" + i + ", " + j + "] = " + X.num(cs.dy[n]) + " goes to " + at(winner[0], winner[1]) +
          " only; the other " + (k * k - 1) + " inputs of the window get nothing from it. dL/dx[" + winner[0] + ", " +
          winner[1] + "] = " + (sources.length > 1 ? sources.join(" + ") + " = " : ""));
        X.el("output", { "class": "xp-result" }, back, X.num(total));
        var wins = sources.length > 1 ? " (it wins " + sources.length + " windows)." : ".";
        back.appendChild(document.createTextNode(wins));
      }
    }

    draw();
  }

  X.register("pool", build);
})();
