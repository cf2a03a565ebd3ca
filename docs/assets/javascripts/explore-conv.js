// The convolution explorer (lessons/convolution.md): an input, a filter, a padding and a stride
// chosen by the reader; the output map; the window of the output cell the reader points at,
// on every input channel, and that cell's sum written out with its numbers:
//   y[i, j] = b + sum over c, u, v of w[c, u, v] * x_pad[c, i * stride + u, j * stride + v].
// Data (inputs, filters) from docs/_helpers/explorables.py conv_data().
(function () {
  "use strict";
  var X = window.Explorables;

  function build(root, data) {
    var start = data.start;
    var diverging = X.colourMap(data.diverging);
    var state = { input: start.input, filter: 0, padding: start.padding, stride: start.stride, cell: start.cell };
    state.filter = Math.max(0, names(state.input).indexOf(start.filter));

    function names(inputIndex) {
      return data.inputs[inputIndex].filters.map(function (f) { return f.name; });
    }

    var controls = X.el("div", { "class": "xp-controls" }, root);
    var inputNames = data.inputs.map(function (i) { return i.name; });
    var inputBox = X.select(controls, "input", inputNames, state.input, chooseInput);
    var filterBox = X.el("span", {}, controls);
    var paddingBox = X.select(controls, "padding", data.paddings.map(String), data.paddings.indexOf(state.padding),
      function (k) { state.padding = data.paddings[k]; draw(); });
    var strideBox = X.select(controls, "stride", data.strides.map(String), data.strides.indexOf(state.stride),
      function (k) { state.stride = data.strides[k]; draw(); });
    var inputsRow = X.el("div", { "class": "xp-row xp-channels" }, root);
    var filterRow = X.el("div", { "class": "xp-row xp-top" }, root);
    var readout = X.el("div", { "class": "xp-readout xp-equation", "aria-live": "polite" }, root);
    var view = null;

    function chooseInput(index) {
      var before = data.inputs[state.input].filters[state.filter].name;
      state.input = index;
      var first = data.inputs[index].first;
      if (first) {
        state.filter = first.filter;
        state.padding = first.padding;
        state.stride = first.stride;
        state.cell = first.cell;
      } else {
        state.filter = Math.max(0, names(index).indexOf(before));
        state.cell = null;
      }
      paddingBox.value = String(data.paddings.indexOf(state.padding));
      strideBox.value = String(data.strides.indexOf(state.stride));
      draw();
    }

    function filterSelect() {
      X.clear(filterBox);
      X.select(filterBox, "filter", names(state.input), state.filter, function (k) { state.filter = k; draw(); });
    }

    // x of the chosen input as channels of rows, zero-padded.
    function paddedInput(spec, p) {
      var H = spec.height, W = spec.width, C = spec.channels.length;
      var values = spec.values || X.bytes(spec.pixels);
      var out = [];
      for (var c = 0; c < C; c++) {
        var rows = [];
        for (var r = -p; r < H + p; r++) {
          var row = [];
          for (var q = -p; q < W + p; q++) {
            row.push(r < 0 || r >= H || q < 0 || q >= W ? 0 : values[(c * H + r) * W + q]);
          }
          rows.push(row);
        }
        out.push(rows);
      }
      return out;
    }

    function convolve(xpad, filter, stride, size) {
      var k = filter.weights[0].length, out = [];
      for (var i = 0; i < size; i++) {
        var row = [];
        for (var j = 0; j < size; j++) {
          var sum = filter.bias;
          for (var c = 0; c < xpad.length; c++) {
            for (var u = 0; u < k; u++) {
              for (var v = 0; v < k; v++) sum += filter.weights[c][u][v] * xpad[c][i * stride + u][j * stride + v];
            }
          }
          row.push(sum);
        }
        out.push(row);
      }
      return out;
    }

    function draw() {
      filterSelect();
      inputBox.value = String(state.input);
      var spec = data.inputs[state.input], filter = spec.filters[state.filter];
      var p = state.padding, s = state.stride, k = filter.weights[0].length, H = spec.height;
      var size = Math.floor((H + 2 * p - k) / s) + 1;
      var xpad = paddedInput(spec, p);
      var y = convolve(xpad, filter, s, size);
      var numbers = Boolean(spec.values);
      var padded = H + 2 * p;
      X.clear(inputsRow);
      X.clear(filterRow);
      view = { spec: spec, filter: filter, xpad: xpad, y: y, k: k, size: size, windows: [], inputCells: [] };

      spec.channels.forEach(function (name, c) {
        var title = (spec.channels.length > 1 ? name + ", " : "x, ") + "zero-padded by " + p +
          " (" + padded + " \u00d7 " + padded + ")";
        var pane = X.panel(inputsRow, title, padded, padded, numbers ? 30 : 0);
        if (!numbers) pane.figure.classList.add("xp-channel-panel");
        if (numbers) {
          view.inputCells.push(X.numberCells(pane.svg, padded, padded, function (r, q) { return X.num(xpad[c][r][q]); },
            function (r, q) { return r < p || q < p || r >= H + p || q >= H + p ? "xp-pad" : ""; }));
        } else {
          X.svg("rect", { x: 0, y: 0, width: padded, height: padded, "class": "xp-pad" }, pane.svg);
          var values = X.bytes(spec.pixels);
          X.pixelImage(pane.svg, H, H, function (i) {
            var v = values[c * H * H + i], rgb = [0, 0, 0];
            rgb[c] = v;
            return rgb;
          }, p, p);
        }
        view.windows.push(X.outline(pane.svg, 0, 0, k, k, "xp-window"));
      });

      filter.weights.forEach(function (kernel, c) {
        var title = "w" + (spec.channels.length > 1 ? " on " + spec.channels[c] : "") + " (" + k + " \u00d7 " + k + ")";
        var labels = kernel.map(function (row) { return row.map(function (v) { return X.num(v); }); });
        var widest = 1;
        labels.forEach(function (row) { row.forEach(function (t) { widest = Math.max(widest, t.length); }); });
        var pane = X.panel(filterRow, title, k, k, X.cellWidth(widest));
        X.numberCells(pane.svg, k, k, function (u, v) { return labels[u][v]; }, function () { return "xp-weight"; });
      });
      if (filter.bias !== 0 || spec.channels.length > 1) {
        X.el("p", { "class": "xp-note" }, filterRow, "bias b = " + X.num(filter.bias));
      }

      var outTitle = "y: \u230a(" + H + " + 2\u00b7" + p + " \u2212 " + k + ") / " + s + "\u230b + 1 = " + size +
        " per side";
      var out = X.panel(filterRow, outTitle, size, size, numbers ? 34 : Math.max(7, 240 / size));
      out.figure.classList.add("xp-output");
      out.caption.setAttribute("data-size", size);
      if (numbers) {
        X.numberCells(out.svg, size, size, function (i, j) { return X.num(y[i][j]); });
      } else {
        var top = 0;
        y.forEach(function (row) { row.forEach(function (v) { top = Math.max(top, Math.abs(v)); }); });
        X.pixelImage(out.svg, size, size, function (n) {
          return diverging(top > 0 ? 0.5 + y[Math.floor(n / size)][n % size] / (2 * top) : 0.5);
        });
      }
      view.chosen = X.outline(out.svg, 0, 0, 1, 1, "xp-chosen");
      var pick = X.picker(out.svg, size, size, "output map y, " + size + " by " + size, show);
      var cell = state.cell || [Math.floor((size - 1) / 2), Math.floor((size - 1) / 2)];
      pick.set(Math.min(cell[0], size - 1), Math.min(cell[1], size - 1));
    }

    // The window of output (i, j) on every channel, and its sum written out.
    function show(i, j) {
      state.cell = [i, j];
      var s = state.stride, k = view.k, spec = view.spec, filter = view.filter;
      view.windows.forEach(function (rect) {
        rect.setAttribute("x", j * s + 0.06);
        rect.setAttribute("y", i * s + 0.06);
      });
      view.inputCells.forEach(function (layer) {
        Array.prototype.forEach.call(layer.children, function (g) {
          var r = Number(g.getAttribute("data-row")), q = Number(g.getAttribute("data-col"));
          var inside = r >= i * s && r < i * s + k && q >= j * s && q < j * s + k;
          g.firstChild.classList.toggle("xp-in-window", inside);
        });
      });
      view.chosen.setAttribute("x", j + 0.06);
      view.chosen.setAttribute("y", i + 0.06);

      X.clear(readout);
      X.el("div", { "class": "xp-eq-head" }, readout, "y[" + i + ", " + j + "] =");
      filter.weights.forEach(function (kernel, c) {
        var terms = [];
        for (var u = 0; u < k; u++) {
          for (var v = 0; v < k; v++) {
            var w = kernel[u][v], text = X.num(w);
            terms.push((w < 0 ? "(" + text + ")" : text) + "\u00b7" + X.num(view.xpad[c][i * s + u][j * s + v]));
          }
        }
        var line = X.el("div", { "class": "xp-eq-line", "data-channel": spec.channels[c] }, readout);
        if (spec.channels.length > 1) X.el("span", { "class": "xp-channel" }, line, spec.channels[c] + ": ");
        X.el("span", { "class": "xp-terms" }, line, (c > 0 ? "+ " : "") + terms.join(" + "));
      });
      X.el("div", { "class": "xp-eq-line" }, readout, "+ " + X.num(filter.bias) + " (bias)");
      var result = X.el("div", { "class": "xp-eq-line" }, readout, "= ");
      X.el("output", { "class": "xp-result" }, result, X.num(view.y[i][j]));
    }

    draw();
  }

  X.register("conv", build);
})();
