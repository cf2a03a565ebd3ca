"""Screenshot pages of the built documentation in headless Chromium (a manual check, not CI).

Serves the built ``site/`` folder on ``127.0.0.1`` with Python's ``http.server`` and takes a
full-width screenshot of a few pages, so a person can look at how the math, the tables and
the figures render without opening a browser::

    mkdocs build --strict                      # writes site/
    python scripts/screenshot_docs.py          # writes screenshots/*.png
    python scripts/screenshot_docs.py --site /tmp/site --out /tmp/shots --page layer-table/

Needs Chromium (``apt-get install -y chromium``). Chromium is started with every flag that
stops it from talking to the network, and with a fresh profile per screenshot.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
#: The pages looked at by default: the home page, the overview, one lesson, one stage page, the layer table.
DEFAULT_PAGES = ("", "at-a-glance/", "lessons/convolution/", "network/conv1/", "layer-table/")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=4000",  # let KaTeX render before the screenshot is taken
)


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("screenshot_docs: Chromium not found; install it with `apt-get install -y chromium`")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    """Serve ``site`` on 127.0.0.1, on a free port, from a background thread."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def screenshot(chromium: str, url: str, out: Path, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}",
                   f"--window-size={width},{height}", url]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not out.is_file():
        raise SystemExit(f"screenshot_docs: Chromium failed on {url}:\n{result.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", type=Path, default=REPO_ROOT / "site", help="the built site (default site/)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "screenshots", help="where the PNGs go")
    parser.add_argument("--page", action="append", help="page path relative to the site root (repeatable)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2000)
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        raise SystemExit(f"screenshot_docs: {args.site}/index.html not found; run `mkdocs build` first")
    chromium = find_chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    server, port = serve(args.site)
    try:
        for page in args.page or DEFAULT_PAGES:
            name = page.strip("/").replace("/", "_") or "home"
            out = args.out / f"{name}.png"
            screenshot(chromium, f"http://127.0.0.1:{port}/{page}", out, args.width, args.height)
            print(out)
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
