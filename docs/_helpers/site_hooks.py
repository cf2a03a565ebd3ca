"""The site's MkDocs hooks: the helpers' import path, and links in generated Markdown.

``mkdocs.yml`` names this file under ``hooks:``, so a plain ``mkdocs build`` in the repository
root runs it; nothing else has to be set.

- :func:`on_config` puts ``docs/_helpers`` (and, through :mod:`site_kit`, the repository root)
  first on ``sys.path``, once per build. A page's ``markdown-exec`` block then starts with
  ``import lesson_conv as c``, like any Python file beside the helpers.
- :func:`on_pre_build` starts the examples' smoke runs, whose output the Examples page shows, so
  that they run in the background while the other pages are built.
- :func:`on_page_content` writes the links of generated blocks the way MkDocs writes the links of
  the page. markdown-exec renders what a block prints with a Markdown instance of its own, which
  does not have MkDocs's link rewriting, so ``[Conv3](../network/conv3.md)`` printed by a block
  would reach the HTML unchanged and lead nowhere on the built site. Every relative ``href``/``src``
  that still names a ``.md`` file after MkDocs's own pass is such a link: it is resolved against
  the page's source file, replaced by the target page's URL relative to this page (MkDocs's
  ``File.url_relative_to``), and reported as a warning, which fails ``--strict``, when the target is
  not a page of the site.
"""

from __future__ import annotations

import logging
import posixpath
import re
import sys
from pathlib import Path
from urllib.parse import unquote

HELPERS = Path(__file__).resolve().parent

log = logging.getLogger("mkdocs.hooks.site_hooks")  # under "mkdocs": counted by --strict

_MD_LINK = re.compile(r"""(?P<attr>\b(?:href|src))=(?P<quote>["'])(?P<target>(?!(?:[a-z][a-z0-9+.-]*:|/|#))"""
                      r"""[^"'#?]*?\.md)(?P<anchor>#[^"']*)?(?P=quote)""", re.I)


def on_config(config):
    if str(HELPERS) not in sys.path:
        sys.path.insert(0, str(HELPERS))
    import site_kit  # noqa: F401  (puts the repository root on sys.path and selects matplotlib's Agg backend)

    return config


def on_pre_build(config):
    import examples_pages

    examples_pages.start_smoke_runs()  # seconds of CPU each; they run while the other pages are built


def on_page_content(html, page, config, files):
    source = page.file.src_uri

    def rewrite(match: re.Match) -> str:
        target_uri = posixpath.normpath(posixpath.join(posixpath.dirname(source), unquote(match["target"])))
        target = files.get_file_from_path(target_uri)
        if target is None or not target.is_documentation_page():
            log.warning("%s: a generated link points to '%s', which is not a page of the site", source,
                        match["target"])
            return match.group(0)
        url = target.url_relative_to(page.file) + (match["anchor"] or "")
        return f'{match["attr"]}={match["quote"]}{url}{match["quote"]}'

    return _MD_LINK.sub(rewrite, html)
