// Render the math that pymdownx.arithmatex (generic mode) wraps in <span|div class="arithmatex">.
// KaTeX itself is vendored under assets/katex/, so this works offline.
(function () {
  function render() {
    var nodes = document.querySelectorAll(".arithmatex");
    for (var i = 0; i < nodes.length; i++) {
      renderMathInElement(nodes[i], {
        delimiters: [
          { left: "$$", right: "$$", display: true },
          { left: "$", right: "$", display: false },
          { left: "\\(", right: "\\)", display: false },
          { left: "\\[", right: "\\]", display: true }
        ],
        throwOnError: false
      });
    }
  }
  if (typeof document$ !== "undefined") {
    document$.subscribe(render);  // Material's page-load observable (also fires on instant loading)
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", render);
  } else {
    render();
  }
})();
