"""Every link and every resource of the built site leads somewhere: a page, a file or an anchor that exists.

``mkdocs build --strict`` checks the links written in the Markdown of a page, but not those in
HTML that a plugin inserts (the output of a ``markdown-exec`` block, a figure, the theme's own
links). This test reads the built HTML instead: every ``href`` and ``src`` of every page, resolved
the way a browser resolves it against the page's URL, must name a file of the site (a folder
stands for its ``index.html``), and its ``#fragment`` must be an ``id`` (or ``name``) on that page.
"""

from __future__ import annotations

import posixpath
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Targets that are not links into the site: another scheme, or the page's own top (``href="#"``).
_NOT_INTO_THE_SITE = ("http:", "https:", "mailto:", "data:", "javascript:", "blob:")


class _Links(HTMLParser):
    """The ``href``/``src`` values and the anchor names (``id``, ``<a name>``) of one page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.targets: list[tuple[str, str]] = []  # (tag, value)
        self.anchors: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.anchors.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.anchors.add(attrs["name"])
        for name in ("href", "src"):
            value = attrs.get(name)
            if value is not None and not (tag == "link" and attrs.get("rel") in ("canonical", "alternate")):
                self.targets.append((tag, value.strip()))

    handle_startendtag = handle_starttag


def _site_prefix() -> str:
    """The path of ``site_url`` ("/cifar-alexnet/"): absolute links (the 404 page's) start with it."""
    match = re.search(r"^site_url:\s*(\S+)", (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.M)
    return (urlsplit(match.group(1)).path if match else "") or "/"


def _read(page: Path, cache: dict) -> _Links:
    if page not in cache:
        reader = _Links()
        reader.feed(page.read_text(encoding="utf-8"))
        cache[page] = reader
    return cache[page]


def crawl(site: Path) -> tuple[int, list[str]]:
    """(number of links checked, broken links as 'page: target (why)')."""
    prefix, pages, checked, broken = _site_prefix(), {}, 0, []
    for page in sorted(site.rglob("*.html")):
        page_url = page.relative_to(site).as_posix()  # "lessons/convolution/index.html"
        for tag, value in _read(page, pages).targets:
            if not value or value == "#" or value.lower().startswith(_NOT_INTO_THE_SITE) or value.startswith("//"):
                continue
            checked += 1
            parts = urlsplit(value)
            path = unquote(parts.path)
            if path.startswith("/"):
                if not path.startswith(prefix):
                    broken.append(f"{page_url}: {value} (absolute, outside {prefix})")
                    continue
                resolved = path[len(prefix):]
            elif path:
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(page_url), path))
            else:
                resolved = page_url  # "#anchor" on the same page
            if resolved.startswith("../") or resolved == "..":
                broken.append(f"{page_url}: {value} (leaves the site)")
                continue
            target = site / resolved
            if target.is_dir() or path.endswith("/") or resolved in (".", ""):
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page_url}: {value} (no file {target.relative_to(site).as_posix()})")
                continue
            if parts.fragment and target.suffix == ".html":
                if unquote(parts.fragment) not in _read(target, pages).anchors:
                    broken.append(f"{page_url}: {value} (no id '{parts.fragment}' on {target.relative_to(site)})")
    return checked, broken


def test_every_link_and_resource_resolves(site):
    out, result, _ = site
    assert result.returncode == 0, "the site did not build (see test_site_builds_strictly)"
    checked, broken = crawl(out)
    print(f"{checked} links and resources checked, {len(broken)} broken")
    assert checked > 1000, f"only {checked} links found: is the crawl reading the pages?"
    assert not broken, f"{len(broken)} broken links:\n" + "\n".join(broken[:60])


def test_crawl_finds_a_broken_link(tmp_path):
    """The crawl itself: a missing page, a missing anchor and a .md link are reported; good links are not."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text('<h2 id="here">x</h2><a href="#here">ok</a>'
                                               '<a href="../b/">missing page</a><a href="#nowhere">bad anchor</a>'
                                               '<a href="../index.html#top">ok</a><a href="../c.md">md link</a>'
                                               '<img src="data:image/png;base64,AAAA">', encoding="utf-8")
    (tmp_path / "index.html").write_text('<p id="top"></p><a href="a/#here">ok</a>', encoding="utf-8")
    checked, broken = crawl(tmp_path)
    assert checked == 6
    assert sorted(b.split(" (")[0] for b in broken) == ["a/index.html: #nowhere", "a/index.html: ../b/",
                                                        "a/index.html: ../c.md"]
