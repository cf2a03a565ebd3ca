"""Screenshot and measure pages of the built documentation in headless Chromium (a manual check, not CI).

Serves the built site on ``127.0.0.1`` with Python's ``http.server``, opens each page in
headless Chromium (through Selenium and chromedriver) at desktop width, at phone width and in
dark mode, and writes

- ``<page>_<mode>_<n>.png``: the whole page, cut into screen-high tiles, for a person to read;
- ``<page>_<mode>_fig<k>.png``: each generated figure on its own;
- ``measurements.json`` and a summary on stdout: for every figure its drawn and displayed width
  and its smallest label in CSS pixels as the browser renders it (an SVG ``<text>``'s computed
  font size times the figure's scale on screen), and every formula, code block or table that is
  wider than its column (it scrolls) or wider than the screen (it is cut)::

    mkdocs build --strict --site-dir /tmp/site
    python scripts/screenshot_docs.py --site /tmp/site --out /tmp/shots
    python scripts/screenshot_docs.py --site /tmp/site --out /tmp/shots --page lessons/relu/ --mode phone

Needs Chromium and chromedriver (``apt-get install -y chromium chromium-driver``) and Selenium.
Chromium is started with every flag that stops it from talking to the network, with a fresh
profile.
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The pages looked at by default: every lesson, the overview, the training page.
DEFAULT_PAGES = ("", "at-a-glance/", "lessons/convolution/", "lessons/max-pool/", "lessons/batchnorm/",
                 "lessons/relu/", "lessons/linear/", "lessons/dropout/", "lessons/softmax-cross-entropy/",
                 "lessons/adam/", "lessons/training-step/", "training/", "receptive-fields/", "network/conv1/")
#: name -> (window width, window height, dark colour scheme, mobile)
MODES = {"desktop": (1280, 1800, False, False), "phone": (390, 1600, False, True), "dark": (1280, 1800, True, False)}
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)

#: Runs in the page: what each figure looks like on screen, and what is wider than its column.
MEASURE_JS = r"""
const out = {figures: [], wide: [], page_width: document.documentElement.scrollWidth,
             viewport: window.innerWidth};
const article = document.querySelector("article") || document.body;
const figures = article.querySelectorAll("figure.generated, .figure-scroll");
let k = 0;
for (const fig of figures) {
  if (fig.closest("figure.generated") && fig !== fig.closest("figure.generated") && !fig.matches("figure.generated")) continue;
  if (fig.matches(".figure-scroll") && fig.querySelector("figure.generated")) continue;
  const item = {index: k++, alt: "", kind: "", drawn_width: null, shown_width: null, smallest_label_px: null,
                smallest_label_text: "", labels: 0, scrolls: false, id: ""};
  const svg = fig.querySelector("svg");
  const img = fig.querySelector("img");
  const box = fig.getBoundingClientRect();
  item.top = box.top + window.scrollY;
  item.scrolls = fig.scrollWidth > fig.clientWidth + 1 || !!fig.closest(".figure-scroll") &&
                 fig.closest(".figure-scroll").scrollWidth > fig.closest(".figure-scroll").clientWidth + 1;
  if (svg) {
    item.kind = "svg";
    item.alt = svg.getAttribute("aria-label") || "";
    const vb = svg.viewBox.baseVal;
    item.drawn_width = vb ? vb.width : null;
    item.shown_width = svg.getBoundingClientRect().width;
    for (const t of svg.querySelectorAll("text")) {
      if (!t.textContent.trim()) continue;
      const ctm = t.getScreenCTM();
      const size = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(ctm.a, ctm.b);
      item.labels++;
      if (item.smallest_label_px === null || size < item.smallest_label_px) {
        item.smallest_label_px = size; item.smallest_label_text = t.textContent.trim().slice(0, 40);
      }
    }
  } else if (img) {
    item.kind = img.src.startsWith("data:image/svg") ? "svg-img" : "png";
    item.alt = img.alt;
    item.drawn_width = img.naturalWidth;
    item.shown_width = img.getBoundingClientRect().width;
  }
  out.figures.push(item);
}
for (const el of article.querySelectorAll(".katex-display, pre, .md-typeset__table, table")) {
  const r = el.getBoundingClientRect();
  if (el.scrollWidth > el.clientWidth + 1 || r.right > window.innerWidth + 1) {
    out.wide.push({kind: el.matches(".katex-display") ? "formula" : el.tagName.toLowerCase(),
                   content_width: el.scrollWidth, box_width: el.clientWidth,
                   cut_by_screen: r.right > window.innerWidth + 1,
                   text: (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 70)});
  }
}
return out;
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    """Serve ``site`` on 127.0.0.1, on a free port, from a background thread."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def start_browser(profile: str):
    from selenium import webdriver

    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        raise SystemExit("screenshot_docs: Chromium and chromedriver are needed (apt-get install -y chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))


def set_mode(driver, mode: str) -> None:
    width, height, dark, mobile = MODES[mode]
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                           {"features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})


def load(driver, url: str) -> None:
    driver.get(url)
    driver.execute_script("localStorage.clear()")  # the theme remembers a chosen palette; the media query decides
    driver.get(url)
    for _ in range(50):  # KaTeX renders every formula after the page has loaded
        if driver.execute_script('return document.readyState === "complete" && '
                                 '!document.querySelector("script[type^=\'math/tex\']")'):
            break
        time.sleep(0.1)
    time.sleep(0.3)


def capture(driver, clip: dict | None = None) -> bytes:
    params = {"format": "png", "captureBeyondViewport": True}
    if clip:
        params["clip"] = {**clip, "scale": 1}
    return base64.b64decode(driver.execute_cdp_cmd("Page.captureScreenshot", params)["data"])


def shoot_page(driver, url: str, name: str, mode: str, out: Path, tiles: bool) -> dict:
    set_mode(driver, mode)
    load(driver, url)
    measured = driver.execute_script(MEASURE_JS)
    width, height, _, _ = MODES[mode]
    total = driver.execute_script("return document.documentElement.scrollHeight")
    if tiles:
        for n, top in enumerate(range(0, total, height), start=1):
            clip = {"x": 0, "y": top, "width": width, "height": min(height, total - top)}
            (out / f"{name}_{mode}_{n:02d}.png").write_bytes(capture(driver, clip))
    elements = driver.execute_script('return [...document.querySelectorAll("article figure.generated")]'
                                     '.filter(f => !f.parentElement.closest("figure.generated"))'
                                     '.map(f => { const r = (f.closest(".figure-scroll") || f).getBoundingClientRect();'
                                     ' return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}; })')
    for k, box in enumerate(elements):
        if box["width"] and box["height"]:
            (out / f"{name}_{mode}_fig{k}.png").write_bytes(capture(driver, box))
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", type=Path, default=REPO_ROOT / "site", help="the built site (default site/)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "screenshots", help="where the PNGs go")
    parser.add_argument("--page", action="append", help="page path relative to the site root (repeatable)")
    parser.add_argument("--mode", action="append", choices=sorted(MODES), help="desktop, phone, dark (repeatable; default all)")
    parser.add_argument("--no-tiles", action="store_true", help="figures and measurements only, no page tiles")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        raise SystemExit(f"screenshot_docs: {args.site}/index.html not found; run `mkdocs build` first")
    args.out.mkdir(parents=True, exist_ok=True)
    server, port = serve(args.site)
    report = {}
    try:
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            driver = start_browser(profile)
            try:
                for page in args.page or DEFAULT_PAGES:
                    name = page.strip("/").replace("/", "_") or "home"
                    for mode in args.mode or list(MODES):
                        measured = shoot_page(driver, f"http://127.0.0.1:{port}/{page}", name, mode, args.out,
                                              not args.no_tiles)
                        report[f"{name} {mode}"] = measured
                        print_summary(name, mode, measured)
            finally:
                driver.quit()
    finally:
        server.shutdown()
    (args.out / "measurements.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


def print_summary(name: str, mode: str, measured: dict) -> None:
    cut = " PAGE WIDER THAN SCREEN" if measured["page_width"] > measured["viewport"] + 1 else ""
    print(f"{name} [{mode}]{cut}")
    for f in measured["figures"]:
        label = "-" if f["smallest_label_px"] is None else f"{f['smallest_label_px']:.1f} px ({f['smallest_label_text']!r})"
        scale = f["shown_width"] / f["drawn_width"] if f["drawn_width"] else float("nan")
        print(f"  fig{f['index']} {f['kind']:4s} drawn {f['drawn_width']!s:>6} shown {f['shown_width']:7.1f} "
              f"(×{scale:.2f}){' scrolls' if f['scrolls'] else ''}; smallest label {label}; {f['alt'][:50]}")
    for w in measured["wide"]:
        how = "CUT BY SCREEN" if w["cut_by_screen"] else "scrolls"
        print(f"  {w['kind']} {w['content_width']} > {w['box_width']} px, {how}: {w['text'][:60]}")


if __name__ == "__main__":
    sys.exit(main())
