// Render the math of pymdownx.arithmatex (MathJax mode, no preview): every formula is a
// <script type="math/tex"> (inline) or <script type="math/tex; mode=display"> (display) inside
// an element of class "arithmatex". Scripts are left out of the search index, so the search
// shows no raw LaTeX. KaTeX itself is vendored under assets/katex/, so this works offline.
(function () {
  // arithmatex writes <, > and & inside the script as &lt; &gt; &amp;, and a script's text is
  // not HTML-decoded by the browser: decode it before KaTeX reads it.
  var decoder = document.createElement("textarea");
  function decodeEntities(text) {
    decoder.innerHTML = text;
    return decoder.value;
  }
  function render() {
    var scripts = document.querySelectorAll('.arithmatex script[type^="math/tex"]');
    for (var i = 0; i < scripts.length; i++) {
      var script = scripts[i];
      var display = script.type.indexOf("mode=display") !== -1;
      var target = document.createElement(display ? "div" : "span");
      katex.render(decodeEntities(script.textContent), target, { displayMode: display, throwOnError: false });
      script.parentNode.replaceChild(target, script);
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
