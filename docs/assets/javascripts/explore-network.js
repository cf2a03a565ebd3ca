// The network explorer (at-a-glance.md): the stages of the network as a row of buttons; choosing
// one shows its output shape, parameters, multiply-accumulates and FLOPs (reference.counts, the
// layer table's numbers) and what it makes of a chosen sample image: the first feature maps, each
// scaled to its own maximum, the vector of a fully connected stage, or the ten logits. Data from
// docs/_helpers/explorables.py network_data().
(function () {
  "use strict";
  var X = window.Explorables;

  function build(root, data) {
    var heat = X.colourMap(data.heat);
    var names = data.stages.map(function (s) { return s.name; });
    var state = { stage: names.indexOf(data.start.stage), image: data.start.image };

    var diagram = X.el("div", { "class": "xp-diagram", role: "toolbar", "aria-label": "stages of the network" }, root);
    var buttons = data.stages.map(function (stage, index) {
      var button = X.el("button", { type: "button", "class": "xp-stage", "data-stage": stage.name }, diagram);
      X.el("span", { "class": "xp-stage-name" }, button, stage.name);
      X.el("span", { "class": "xp-stage-shape" }, button, stage.shape.join("\u00d7"));
      button.addEventListener("click", function () { choose(index); });
      return button;
    });
    diagram.addEventListener("keydown", function (event) {
      var step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
      if (event.key === "Home") step = -state.stage;
      if (event.key === "End") step = buttons.length - 1 - state.stage;
      if (step === undefined) return;
      event.preventDefault();
      choose(Math.max(0, Math.min(buttons.length - 1, state.stage + step)));
      buttons[state.stage].focus();
    });

    var images = X.el("div", { "class": "xp-images", role: "group", "aria-label": "sample image" }, root);
    X.el("span", { "class": "xp-images-label" }, images, "image:");
    var imageButtons = data.images.map(function (image, index) {
      var button = X.el("button", { type: "button", "class": "xp-image-choice", "aria-label": image.name }, images);
      var thumb = X.svg("svg", { viewBox: "0 0 32 32", "aria-hidden": "true" }, button);
      var pixels = X.bytes(image.pixels);
      X.pixelImage(thumb, 32, 32, function (i) { return [pixels[i], pixels[1024 + i], pixels[2048 + i]]; });
      X.el("span", {}, button, image.name);
      button.addEventListener("click", function () { state.image = index; draw(); });
      return button;
    });

    var details = X.el("div", { "class": "xp-details", "aria-live": "polite" }, root);
    var maps = X.el("div", { "class": "xp-maps" }, root);

    function choose(index) {
      state.stage = index;
      draw();
    }

    function stat(parent, name, label, value) {
      var item = X.el("div", { "class": "xp-stat" }, parent);
      X.el("span", { "class": "xp-stat-label" }, item, label);
      X.el("span", { "class": "xp-stat-value", "data-stat": name }, item, value);
    }

    function draw() {
      var stage = data.stages[state.stage];
      buttons.forEach(function (b, k) {
        b.setAttribute("aria-pressed", String(k === state.stage));
        b.setAttribute("tabindex", k === state.stage ? "0" : "-1");
      });
      imageButtons.forEach(function (b, k) { b.setAttribute("aria-pressed", String(k === state.image)); });

      X.clear(details);
      var words = stage.words.indexOf(stage.name) === 0 ? stage.words : stage.name + ": " + stage.words;
      X.el("p", { "class": "xp-stage-title" }, details, words);
      var stats = X.el("div", { "class": "xp-stats" }, details);
      stat(stats, "shape", "output", X.shape(stage.shape));
      stat(stats, "weights", "parameters", X.count(stage.weights));
      stat(stats, "macs", "multiply-accumulates", X.count(stage.macs));
      stat(stats, "flops", "FLOPs (torchstat)", X.count(stage.flops));
      if (stage.layers.length) {
        var table = X.el("table", { "class": "xp-layers" }, details);
        var head = X.el("tr", {}, X.el("thead", {}, table));
        ["layer", "output", "parameters", "MACs", "FLOPs"].forEach(function (h) { X.el("th", {}, head, h); });
        var body = X.el("tbody", {}, table);
        stage.layers.forEach(function (layer) {
          var tr = X.el("tr", { "data-layer": layer.name }, body);
          [layer.name, X.shape(layer.shape), X.count(layer.weights), X.count(layer.macs), X.count(layer.flops)]
            .forEach(function (cell) { X.el("td", {}, tr, cell); });
        });
      }

      X.clear(maps);
      var image = data.images[state.image];
      if (!stage.maps) {
        X.el("p", { "class": "xp-maps-title" }, maps, "The input: the " + image.name + " itself, " +
          X.shape(stage.shape) + ".");
        var tile = X.el("figure", { "class": "xp-map xp-map-large" }, maps);
        var picture = X.svg("svg", { viewBox: "0 0 32 32", "aria-hidden": "true" }, tile);
        var pixels = X.bytes(image.pixels);
        X.pixelImage(picture, 32, 32, function (i) { return [pixels[i], pixels[1024 + i], pixels[2048 + i]]; });
        return;
      }
      var m = stage.maps[state.image];
      if (m.logits) return logits(m.logits, image.name);
      var title = m.vector
        ? "The " + X.count(m.vector) + " values of " + stage.name + " for the " + image.name +
          ", in rows of " + m.width +
          (m.run ? " (each run of " + m.run + " is one channel's map)" : "") +
          ", scaled to their maximum (weights: " + data.weights + "):"
        : "Channels 0\u2013" + (m.channels - 1) + " of " + stage.shape[0] + " for the " + image.name +
          ", each scaled to its own maximum (weights: " + data.weights + "):";
      X.el("p", { "class": "xp-maps-title" }, maps, title);
      var count = m.vector ? 1 : m.channels, area = m.height * m.width;
      var levels = X.nibbles(m.data, count * area);
      for (var c = 0; c < count; c++) {
        var figure = X.el("figure", { "class": "xp-map" + (m.vector ? " xp-map-vector" : "") }, maps);
        var drawing = X.svg("svg", { viewBox: "0 0 " + m.width + " " + m.height, "aria-hidden": "true" }, figure);
        (function (offset) {
          X.pixelImage(drawing, m.width, m.height, function (i) { return heat(levels[offset + i] / 255); });
        })(c * area);
        var label = X.el("figcaption", {}, figure);
        X.el("span", {}, label, m.vector ? "max " : "channel " + c + ": max ");
        X.el("span", { "class": "xp-map-max", "data-channel": c }, label, X.num(m.max[c], 3));
      }
    }

    function logits(values, imageName) {
      X.el("p", { "class": "xp-maps-title" }, maps, "The " + values.length + " logits for the " + imageName +
        " (weights: " + data.weights + "); softmax turns the largest into the most probable class:");
      var top = Math.max.apply(null, values.map(Math.abs)) || 1;
      var list = X.el("div", { "class": "xp-logits" }, maps);
      values.forEach(function (v, k) {
        var row = X.el("div", { "class": "xp-logit" }, list);
        X.el("span", { "class": "xp-logit-class" }, row, data.classes[k]);
        var bar = X.el("span", { "class": "xp-logit-bar" }, row);
        X.el("span", { "class": v < 0 ? "xp-bar-negative" : "xp-bar-positive",
          style: "width: " + (50 * Math.abs(v) / top).toFixed(1) + "%; " + (v < 0 ? "right: 50%" : "left: 50%") }, bar);
        X.el("span", { "class": "xp-logit-value", "data-class": data.classes[k] }, row, X.num(v, 3));
      });
    }

    draw();
  }

  X.register("network", build);
})();
