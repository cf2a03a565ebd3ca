// What the site's explorable figures share (explore-conv.js, explore-pool.js, explore-rf.js,
// explore-network.js): finding the figures on a page, building grids in SVG, picking a cell with
// the mouse, a finger or the keyboard, and writing numbers.
//
// A figure on a page is a <div class="explorable" data-explorable="KIND"> made at build time by
// docs/_helpers/explorables.py. It holds the figure's data in a <script type="application/json">
// and a static picture (<div class="explorable-static">) that a reader without JavaScript sees.
// Each explore-*.js file registers a function that builds its figure from the data; the kit runs
// it and then hides the static picture. Nothing is fetched: all data is in the page.
(function () {
  "use strict";

  var builders = {};
  var SVG_NS = "http://www.w3.org/2000/svg"; // the SVG namespace name, not an address that is loaded
  var MINUS = "\u2212";

  function register(kind, build) {
    builders[kind] = build;
  }

  function initAll() {
    var boxes = document.querySelectorAll(".explorable[data-explorable]");
    Array.prototype.forEach.call(boxes, function (box) {
      var build = builders[box.getAttribute("data-explorable")];
      if (!build || box.hasAttribute("data-ready")) return;
      var data = JSON.parse(box.querySelector("script.explorable-data").textContent);
      var label = box.getAttribute("data-label");
      var live = el("div", { "class": "explorable-live", role: "group", "aria-label": label });
      box.appendChild(live);
      try {
        build(live, data);
      } catch (error) {
        box.removeChild(live); // the static picture stays
        throw error;
      }
      box.querySelector(".explorable-static").hidden = true;
      box.setAttribute("data-ready", "true");
    });
  }

  // ------------------------------------------------------------------ elements

  function el(tag, attrs, parent, text) {
    var node = document.createElement(tag);
    setAttrs(node, attrs);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function svg(tag, attrs, parent, text) {
    var node = document.createElementNS(SVG_NS, tag);
    setAttrs(node, attrs);
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function setAttrs(node, attrs) {
    for (var name in attrs || {}) {
      if (attrs[name] !== undefined && attrs[name] !== null) node.setAttribute(name, attrs[name]);
    }
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  // A labelled <select>; onChange gets the chosen option's index.
  function select(parent, label, options, chosen, onChange) {
    var wrap = el("label", { "class": "xp-control" }, parent);
    el("span", {}, wrap, label);
    var box = el("select", {}, wrap);
    options.forEach(function (text, index) {
      el("option", { value: String(index) }, box, text);
    });
    box.value = String(chosen);
    box.addEventListener("change", function () {
      onChange(Number(box.value));
    });
    return box;
  }

  // A panel: a title above a grid drawn in an <svg> whose user units are cells (viewBox = cells).
  // cellPx is the size a cell gets when there is room; narrower screens shrink the whole grid.
  // With cellPx 0 the stylesheet sizes the grid.
  function panel(parent, title, cols, rows, cellPx, origin) {
    var figure = el("figure", { "class": "xp-panel" }, parent);
    // a title no wider than its grid, so panels sit side by side where their grids fit
    var width = Math.round(cols * cellPx) + "px";
    var caption = el("figcaption", cellPx ? { style: "max-width: " + width } : {}, figure, title);
    var x0 = origin ? origin[0] : 0, y0 = origin ? origin[1] : 0;
    var drawing = svg("svg", {
      viewBox: [x0, y0, cols, rows].join(" "),
      style: cellPx ? "width: " + width : undefined,
      "class": "xp-grid",
      "aria-hidden": "true"
    }, figure);
    return { figure: figure, caption: caption, svg: drawing };
  }

  // Cells of a grid of numbers, each an SVG rect and text with data-row / data-col; value(r, c)
  // gives the text. The font shrinks so that the longest text fits its cell.
  function numberCells(drawing, rows, cols, value, cellClass, origin) {
    var x0 = origin ? origin[0] : 0, y0 = origin ? origin[1] : 0;
    var layer = svg("g", {}, drawing);
    var widest = 1;
    for (var r = 0; r < rows; r++) {
      for (var c = 0; c < cols; c++) {
        var g = svg("g", { "data-row": r, "data-col": c }, layer);
        var extra = (cellClass && cellClass(r, c)) || "";
        var text = value(r, c);
        widest = Math.max(widest, text.length);
        svg("rect", { x: x0 + c, y: y0 + r, width: 1, height: 1, "class": "xp-cell " + extra }, g);
        svg("text", { x: x0 + c + 0.5, y: y0 + r + 0.5, "class": "xp-num" }, g, text);
      }
    }
    layer.setAttribute("font-size", String(Math.min(0.42, 0.9 / (0.6 * widest)))); // a digit is about 0.6 em wide
    return layer;
  }

  // How wide (in pixels) a cell should be to hold numbers of up to `chars` characters.
  function cellWidth(chars) {
    return chars > 4 ? 40 : chars > 3 ? 36 : 30;
  }

  // An outline of whole cells, drawn just inside their border so it is never clipped.
  function outline(drawing, x, y, width, height, cls) {
    var inset = 0.06;
    return svg("rect", {
      x: x + inset, y: y + inset, width: width - 2 * inset, height: height - 2 * inset, "class": cls
    }, drawing);
  }

  // Pixels as an SVG <image>: colour(index) gives [r, g, b, a] for pixel index = row * width + col.
  function pixelImage(drawing, width, height, colour, x, y) {
    var canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    var context = canvas.getContext("2d");
    var image = context.createImageData(width, height);
    for (var i = 0; i < width * height; i++) {
      var rgba = colour(i);
      image.data[4 * i] = rgba[0];
      image.data[4 * i + 1] = rgba[1];
      image.data[4 * i + 2] = rgba[2];
      image.data[4 * i + 3] = rgba.length > 3 ? rgba[3] : 255;
    }
    context.putImageData(image, 0, 0);
    return svg("image", {
      href: canvas.toDataURL("image/png"), x: x || 0, y: y || 0, width: width, height: height,
      preserveAspectRatio: "none", "class": "xp-pixels"
    }, drawing);
  }

  // ------------------------------------------------------------------ picking a cell

  // Makes `drawing` (an svg made by panel) the place where the reader picks a cell of a
  // rows x cols grid: mouse hover or click, a tap or a drag of the finger, arrow keys (Home / End
  // jump to the row's ends, PageUp / PageDown to the column's). onPick(row, col) is called with
  // every new cell; returns {set(row, col), get()}.
  function picker(drawing, rows, cols, label, onPick, origin) {
    var x0 = origin ? origin[0] : 0, y0 = origin ? origin[1] : 0;
    var state = { row: 0, col: 0 };
    drawing.setAttribute("tabindex", "0");
    drawing.setAttribute("role", "application");
    drawing.setAttribute("aria-label", label + "; arrow keys move the selected cell");
    drawing.removeAttribute("aria-hidden");
    drawing.classList.add("xp-picker");

    function set(row, col, quiet) {
      row = Math.max(0, Math.min(rows - 1, row));
      col = Math.max(0, Math.min(cols - 1, col));
      var changed = row !== state.row || col !== state.col;
      state.row = row;
      state.col = col;
      if (changed || !quiet) onPick(row, col);
    }

    function fromPointer(event) {
      var point = drawing.createSVGPoint();
      point.x = event.clientX;
      point.y = event.clientY;
      var local = point.matrixTransform(drawing.getScreenCTM().inverse());
      var col = Math.floor(local.x - x0), row = Math.floor(local.y - y0);
      if (row >= 0 && row < rows && col >= 0 && col < cols) set(row, col, true);
    }

    drawing.addEventListener("pointerdown", function (event) {
      fromPointer(event);
      if (event.pointerType !== "mouse") drawing.setPointerCapture(event.pointerId);
    });
    drawing.addEventListener("pointermove", function (event) {
      if (event.pointerType === "mouse" || event.buttons) fromPointer(event);
    });
    drawing.addEventListener("keydown", function (event) {
      var moves = {
        ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1],
        Home: [0, -cols], End: [0, cols], PageUp: [-rows, 0], PageDown: [rows, 0]
      };
      var move = moves[event.key];
      if (!move) return;
      event.preventDefault();
      set(state.row + move[0], state.col + move[1], true);
    });
    return {
      set: function (row, col) { set(row, col, false); },
      get: function () { return [state.row, state.col]; }
    };
  }

  // ------------------------------------------------------------------ numbers and data

  // A number as the figures write it: at most `decimals` decimals, no trailing zeros, a real minus sign.
  function num(value, decimals) {
    var d = decimals === undefined ? 4 : decimals;
    var text = Number(value.toFixed(d)).toString();
    if (text === "-0") text = "0";
    return text.replace("-", MINUS);
  }

  // A count with thousands separators: 14869598 -> "14,869,598" (as the site's tables write it).
  function count(value) {
    return String(value).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function shape(dims) {
    return dims.join(" \u00d7 ");
  }

  function bytes(base64) {
    var text = atob(base64);
    var out = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }

  // Values 0..15 stored two to a byte (docs/_helpers/explorables.py pack4), as 0..255.
  function nibbles(base64, length) {
    var packed = bytes(base64);
    var out = new Uint8Array(length);
    for (var i = 0; i < length; i++) {
      var b = packed[i >> 1];
      out[i] = ((i & 1) ? (b & 15) : (b >> 4)) * 17;
    }
    return out;
  }

  // A colour map stored as 256 RGB triples; lookup(t) for t in [0, 1].
  function colourMap(base64) {
    var table = bytes(base64);
    return function (t) {
      var i = Math.max(0, Math.min(255, Math.round(t * 255)));
      return [table[3 * i], table[3 * i + 1], table[3 * i + 2], 255];
    };
  }

  window.Explorables = {
    register: register, el: el, svg: svg, clear: clear, select: select, panel: panel, numberCells: numberCells,
    cellWidth: cellWidth, outline: outline, pixelImage: pixelImage, picker: picker, num: num, count: count,
    shape: shape, bytes: bytes, nibbles: nibbles, colourMap: colourMap, MINUS: MINUS
  };

  // The figure scripts come after this one; all have registered by DOMContentLoaded. With
  // Material's instant navigation on, document$ also fires for every page it swaps in.
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", initAll);
  } else {
    setTimeout(initAll, 0);
  }
  if (typeof document$ !== "undefined") document$.subscribe(function () { setTimeout(initAll, 0); });
})();
