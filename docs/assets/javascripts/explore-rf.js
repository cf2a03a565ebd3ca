// The receptive-field explorer (receptive-fields.md): the reader picks a layer and one unit of its
// output; its theoretical receptive field (reference.receptive_field) is drawn on a sample image,
// with the zero padding around the image hatched, and beside it the unit's effective field: how
// strongly the unit changes with each input pixel, |d unit / d input| from autograd at build time.
// Data from docs/_helpers/explorables.py rf_data().
(function () {
  "use strict";
  var X = window.Explorables;
  var patterns = 0;

  function build(root, data) {
    var heat = X.colourMap(data.heat);
    var stageIndex = data.stages.map(function (s) { return s.name; }).indexOf(data.start.stage);
    var unit = data.start.unit;
    var size = data.size, low = data.view[0], high = data.view[1], span = high - low + 1;
    var pixels = X.bytes(data.image);

    var controls = X.el("div", { "class": "xp-controls" }, root);
    X.select(controls, "layer", data.stages.map(function (s) {
      return s.name + " (" + s.size + " \u00d7 " + s.size + " units, r = " + s.r + ")";
    }), stageIndex, function (k) {
      stageIndex = k;
      var n = data.stages[k].size;
      unit = [Math.floor((n - 1) / 2), Math.floor((n - 1) / 2)];
      draw();
    });
    var row = X.el("div", { "class": "xp-row" }, root);
    var readout = X.el("div", { "class": "xp-readout", "aria-live": "polite" }, root);
    var view = null;

    // The input plane from `low` to `high` in both directions: padding hatched, the image on top.
    // The two planes stay side by side down to a phone's width (the stylesheet sizes them).
    function plane(parent, title) {
      var pane = X.panel(parent, title, span, span, 0, [low, low]);
      pane.figure.classList.add("xp-plane");
      var id = "xp-hatch-" + (++patterns);
      var pattern = X.svg("pattern", { id: id, width: 2, height: 2, patternUnits: "userSpaceOnUse",
        patternTransform: "rotate(45)" }, X.svg("defs", {}, pane.svg));
      X.svg("rect", { width: 2, height: 2, "class": "xp-pad" }, pattern);
      X.svg("line", { x1: 0, y1: 0, x2: 0, y2: 2, "class": "xp-hatch" }, pattern);
      X.svg("rect", { x: low, y: low, width: span, height: span, fill: "url(#" + id + ")" }, pane.svg);
      X.svg("rect", { x: 0, y: 0, width: size, height: size, "class": "xp-image-edge" }, pane.svg);
      return pane;
    }

    function draw() {
      var stage = data.stages[stageIndex], n = stage.size;
      X.clear(row);
      var units = X.panel(row, "units of " + stage.name + "'s output (" + n + " \u00d7 " + n + ")", n, n,
        Math.max(8, Math.min(22, 140 / n)));
      units.figure.classList.add("xp-units");
      X.svg("rect", { x: 0, y: 0, width: n, height: n, "class": "xp-unit-plane" }, units.svg);
      for (var t = 1; t < n; t++) {
        X.svg("line", { x1: t, y1: 0, x2: t, y2: n, "class": "xp-gridline" }, units.svg);
        X.svg("line", { x1: 0, y1: t, x2: n, y2: t, "class": "xp-gridline" }, units.svg);
      }
      stage.effective.forEach(function (e) {
        X.svg("circle", { cx: e.unit[1] + 0.5, cy: e.unit[0] + 0.5, r: 0.2, "class": "xp-dot" }, units.svg);
      });
      var chosen = X.outline(units.svg, 0, 0, 1, 1, "xp-chosen");

      var planes = X.el("div", { "class": "xp-planes" }, row);
      var theory = plane(planes, "theoretical field on the " + data.imageName);
      X.pixelImage(theory.svg, size, size, function (i) {
        return [pixels[i], pixels[size * size + i], pixels[2 * size * size + i]];
      });
      var effective = plane(planes, "effective field, |\u2202 unit / \u2202 input| (" + data.weights + ")");
      var dark = "rgb(" + heat(0).slice(0, 3).join(",") + ")"; // no gradient: the colour map's zero
      X.svg("rect", { x: 0, y: 0, width: size, height: size, fill: dark }, effective.svg);
      var heatLayer = X.svg("g", {}, effective.svg);
      var fields = [theory, effective].map(function (pane) {
        return X.svg("rect", { "class": "xp-field" }, pane.svg);
      });
      view = { stage: stage, chosen: chosen, fields: fields, heatLayer: heatLayer };
      X.picker(units.svg, n, n, "units of " + stage.name, show).set(unit[0], unit[1]);
    }

    function show(i, j) {
      unit = [i, j];
      var stage = view.stage, rows = stage.spans[i], cols = stage.spans[j];
      view.chosen.setAttribute("x", j + 0.06);
      view.chosen.setAttribute("y", i + 0.06);
      view.fields.forEach(function (rect) {
        rect.setAttribute("x", cols[0]);
        rect.setAttribute("y", rows[0]);
        rect.setAttribute("width", cols[1] - cols[0] + 1);
        rect.setAttribute("height", rows[1] - rows[0] + 1);
      });
      X.clear(view.heatLayer);
      var effective = stage.effective.filter(function (e) { return e.unit[0] === i && e.unit[1] === j; })[0];
      if (effective) {
        var values = X.bytes(effective.data);
        X.pixelImage(view.heatLayer, effective.width, effective.height, function (k) { return heat(values[k] / 255); },
          effective.origin[1], effective.origin[0]);
      }

      var inRows = Math.max(0, Math.min(rows[1], size - 1) - Math.max(rows[0], 0) + 1);
      var inCols = Math.max(0, Math.min(cols[1], size - 1) - Math.max(cols[0], 0) + 1);
      var total = (rows[1] - rows[0] + 1) * (cols[1] - cols[0] + 1), inside = inRows * inCols;
      X.clear(readout);
      var p = X.el("p", { "class": "xp-field-text" }, readout);
      p.appendChild(document.createTextNode(stage.name + ", unit (" + i + ", " + j + "): " +
        "its field covers input rows "));
      X.el("span", { "class": "xp-rows" }, p, X.num(rows[0]) + " \u2026 " + X.num(rows[1]));
      p.appendChild(document.createTextNode(" and columns "));
      X.el("span", { "class": "xp-cols" }, p, X.num(cols[0]) + " \u2026 " + X.num(cols[1]));
      p.appendChild(document.createTextNode(" (r = " + stage.r + ", jump " + stage.jump + "); "));
      X.el("span", { "class": "xp-padding-count" }, p, X.count(total - inside));
      p.appendChild(document.createTextNode(" of its " + X.count(total) + " pixels are zero padding."));
      var e = X.el("p", { "class": "xp-effective-text" }, readout);
      if (!effective) {
        e.textContent = "The effective field was measured for the units marked with a dot (corners, middles of " +
          "the edges, centre); pick one of them to see it.";
      } else if (!effective.support) {
        e.textContent = "This unit's gradient is zero everywhere: every ReLU on its paths is off for this image.";
      } else {
        var sp = effective.support;
        e.appendChild(document.createTextNode("Its gradient is non-zero on rows "));
        X.el("span", { "class": "xp-support" }, e,
          sp[0] + " \u2026 " + sp[1] + ", columns " + sp[2] + " \u2026 " + sp[3]);
        e.appendChild(document.createTextNode(", inside its theoretical field."));
      }
    }

    draw();
  }

  X.register("rf", build);
})();
