"""The documentation site: it builds strictly, its numbers are the code's, it needs no network.

One ``mkdocs build --strict`` per test session (module fixture) into a temporary folder;
every ``markdown-exec`` block runs during that build, so a page whose code fails, a broken
link or anchor, or a missing file fails :func:`test_site_builds_strictly`. The other tests
read the built HTML.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCS = REPO_ROOT / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once; returns (site folder, build output, seconds)."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # Material's banner about MkDocs 2, not a warning of ours
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    return out, result, seconds


def test_site_builds_strictly(site):
    out, result, seconds = site
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"mkdocs build --strict failed after {seconds:.0f} s:\n{log[-6000:]}"
    warnings = [line for line in log.splitlines() if "WARNING" in line]
    assert not warnings, "the build logged warnings:\n" + "\n".join(warnings)
    assert (out / "index.html").is_file()


# ----------------------------------------------------------------------------- the layer table


class _TableReader(HTMLParser):
    """The cell texts of the first <table> inside the element with id ``target_id``."""

    def __init__(self, target_id: str):
        super().__init__()
        self.target_id = target_id
        self.depth = 0  # > 0 while inside the target element
        self.in_table = self.done = False
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if self.done:
            return
        if self.depth == 0 and dict(attrs).get("id") == self.target_id:
            self.depth = 1
            return
        if self.depth:
            self.depth += 1
            if tag == "table":
                self.in_table = True
            elif self.in_table and tag == "tr":
                self.rows.append([])
            elif self.in_table and tag in ("td", "th"):
                self.cell = []

    def handle_endtag(self, tag):
        if self.done or not self.depth:
            return
        self.depth -= 1
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(html.unescape("".join(self.cell)).strip())
            self.cell = None
        elif tag == "table" and self.in_table:
            self.done = True

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def _number(text: str) -> int:
    return 0 if text.strip() == "-" else int(text.replace(",", ""))


def _pair(text: str) -> tuple:
    left, right = (part.strip() for part in text.split("/"))
    return tuple(None if part == "-" else int(part) for part in (left, right))


def test_layer_table_page_shows_reference_table(site):
    """Every number of the computed table on the page equals :func:`reference.table.layer_table`."""
    from reference.table import layer_table

    out, result, _ = site
    assert result.returncode == 0, "the site did not build (see test_site_builds_strictly)"
    reader = _TableReader("derived-table")
    reader.feed((out / "layer-table" / "index.html").read_text(encoding="utf-8"))
    header, *body = reader.rows
    assert header[0] == "Layer" and len(body) == len(layer_table())
    column = {name: index for index, name in enumerate(header)}
    for cells, row in zip(body, layer_table()):
        assert cells[0] == row.name
        assert _pair(cells[column["Filters / size"]]) == (row.filters, row.filter_size), row.name
        assert _pair(cells[column["Stride / padding"]]) == (row.stride, row.padding), row.name
        shown_shape = cells[column["Output (C×H×W)"]]
        expected_shape = "-" if row.feature_map is None else "×".join(map(str, row.feature_map))
        assert shown_shape == expected_shape, row.name
        assert _number(cells[column["Weights"]]) == row.weights, row.name
        assert _number(cells[column["Neurons"]]) == row.neurons, row.name
        assert _number(cells[column["FLOPs (torchstat)"]]) == row.torchstat_flops, row.name
        assert _number(cells[column["MAdd (torchstat)"]]) == row.torchstat_madd, row.name
        assert _number(cells[column["MACs"]]) == row.macs, row.name
        assert int(cells[column["Receptive field r"]].split()[0]) == row.receptive_field, row.name
        assert int(cells[column["Jump j"]]) == row.jump, row.name
        assert float(cells[column["Start"]]) == row.start, row.name


def test_comparison_table_marks_every_erratum(site):
    """Each erratum of the original table is marked in the printed table and explained below it."""
    from reference.table import table_errata

    out, result, _ = site
    assert result.returncode == 0
    page = (out / "layer-table" / "index.html").read_text(encoding="utf-8")
    errata = table_errata()
    for number in range(1, len(errata) + 1):
        assert f'href="#erratum-{number}"' in page, f"erratum {number} is not marked in the table"
        assert f'id="erratum-{number}"' in page, f"erratum {number} is not explained"
    marked_cells = page.count('class="erratum"') - page.count('<span class="erratum">this colour</span>')
    cell_errata = [e for e in errata if e.row != "(header)"]
    assert marked_cells == len(cell_errata)


# ----------------------------------------------------------------------------- code on the pages


def _python_blocks(text: str):
    """(info string, code) of every fenced block whose language is python / py / python3."""
    for match in re.finditer(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
                             text, re.M | re.S):
        info = match.group("info").strip()
        language = info.split()[0] if info else ""
        if language in ("python", "py", "python3"):
            body = "\n".join(line[len(match.group("indent")):] for line in match.group("body").splitlines())
            yield info, body


def _markdown_pages():
    return sorted(p for p in DOCS.rglob("*.md") if "_helpers" not in p.parts)


def test_every_python_block_is_executed(site):
    """A ``python`` block on a page either ran during the build (markdown-exec) or runs here.

    Blocks meant only to be read must say so with another language (``pycon``, ``text``).
    """
    out, result, _ = site
    assert result.returncode == 0
    executed_at_build = not_executed = 0
    for page in _markdown_pages():
        for info, code in _python_blocks(page.read_text(encoding="utf-8")):
            if re.search(r'\bexec="(on|true|1)"', info):
                executed_at_build += 1
                continue
            not_executed += 1
            run = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                                 timeout=300)
            assert run.returncode == 0, f"{page.relative_to(REPO_ROOT)}: python block failed:\n{code}\n{run.stderr}"
    assert executed_at_build > 0, "no executed code block found: is markdown-exec still configured?"


def test_build_ran_the_code_blocks(site):
    """markdown-exec really ran: no exec block was left as raw source on a page."""
    out, result, _ = site
    assert result.returncode == 0
    for page in out.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert 'exec="on"' not in text, f"{page}: an exec block was not executed"


# ----------------------------------------------------------------------------- no network


_EXTERNAL_RESOURCE = re.compile(
    r"""<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc\s*=\s*["']?(?:https?:)?//"""
    r"""|<link\b(?=[^>]*\brel\s*=\s*["']?(?:stylesheet|preload|modulepreload|icon|preconnect|dns-prefetch))"""
    r"""[^>]*\bhref\s*=\s*["']?(?:https?:)?//""",
    re.I,
)
_CSS_URL = re.compile(r"""(?:url\(\s*["']?|@import\s+["'])(?:https?:)?//""", re.I)


def test_no_external_scripts_styles_or_fonts(site):
    """Nothing is loaded from another host: no script/style/font/image URL leaves the site."""
    out, result, _ = site
    assert result.returncode == 0
    offenders = []
    for page in out.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        offenders += [f"{page.relative_to(out)}: {m.group(0)[:120]}" for m in _EXTERNAL_RESOURCE.finditer(text)]
        for style in re.findall(r"<style\b[^>]*>(.*?)</style>", text, re.S | re.I):
            offenders += [f"{page.relative_to(out)} <style>: {m.group(0)}" for m in _CSS_URL.finditer(style)]
    for sheet in out.rglob("*.css"):
        text = sheet.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{sheet.relative_to(out)}: {m.group(0)}" for m in _CSS_URL.finditer(text)]
    assert not offenders, "external resources:\n" + "\n".join(offenders[:30])


def test_katex_is_bundled_and_loaded(site):
    """Every page loads the vendored KaTeX, and every font its stylesheet prefers is there."""
    out, result, _ = site
    assert result.returncode == 0
    katex = out / "assets" / "katex"
    assert (katex / "katex.min.js").is_file() and (katex / "contrib" / "auto-render.min.js").is_file()
    assert (DOCS / "assets" / "katex" / "LICENSE").is_file()
    css = (katex / "katex.min.css").read_text(encoding="utf-8")
    woff2 = set(re.findall(r"url\((fonts/[^)]+\.woff2)\)", css))
    assert woff2, "no woff2 fonts referenced by katex.min.css"
    missing = sorted(f for f in woff2 if not (katex / f).is_file())
    assert not missing, f"KaTeX fonts missing from the site: {missing}"
    index = (out / "index.html").read_text(encoding="utf-8")
    for asset in ("assets/katex/katex.min.css", "assets/katex/katex.min.js", "assets/javascripts/katex-init.js"):
        assert asset in index, f"{asset} is not loaded by the pages"


# ----------------------------------------------------------------------------- content drawn from the code


def test_home_page_shows_the_readme_commands(site):
    """The set-up commands on the home page are the README's, character for character."""
    out, result, _ = site
    assert result.returncode == 0
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2
    page = html.unescape(re.sub(r"<[^>]+>", "", (out / "index.html").read_text(encoding="utf-8")))
    for command in commands:
        assert command in page, f"README command not on the home page: {command}"


def test_every_layer_appears_on_a_layer_page(site):
    """Each layer of reference.architecture.LAYERS has its section on one of the network pages."""
    from reference.architecture import LAYERS

    out, result, _ = site
    assert result.returncode == 0
    pages = "".join(p.read_text(encoding="utf-8") for p in (out / "network").rglob("index.html"))
    for layer in LAYERS:
        assert f'id="{layer.name.lower()}"' in pages, f"no section for {layer.name}"


# ----------------------------------------------------------------------------- commands on the pages


def _shell_blocks(text: str):
    for match in re.finditer(r"^(?P<indent>[ \t]*)```(?:bash|sh|shell|console)[^\n]*\n(?P<body>.*?)^(?P=indent)```",
                             text, re.M | re.S):
        yield match.group("body")


def _cli_commands():
    """Every ``cifar-alexnet ...`` command written in a shell block of the docs (placeholders filled)."""
    import shlex

    commands = []
    for page in _markdown_pages():
        for body in _shell_blocks(page.read_text(encoding="utf-8")):
            for line in body.replace("\\\n", " ").splitlines():
                line = line.split(" #", 1)[0].strip()
                words = shlex.split(line.replace("<run>", "RUN"))
                for i, word in enumerate(words):
                    if word.endswith("cifar-alexnet"):
                        commands.append((page.relative_to(REPO_ROOT).as_posix(), words[i + 1:]))
                        break
    return commands


def test_documented_commands_parse():
    """Every ``cifar-alexnet`` command shown on the site is accepted by the real command line."""
    from cifar_alexnet.cli import build_parser

    commands = _cli_commands()
    assert len(commands) >= 5, "expected the getting-started page to show several commands"
    for page, args in commands:
        command = next((a for a in args if not a.startswith("-")), None)
        try:
            build_parser(command).parse_args(args)
        except SystemExit as error:
            pytest.fail(f"{page}: `cifar-alexnet {' '.join(args)}` does not parse (exit {error.code})")


def test_files_named_in_commands_exist():
    """Test files and examples named in the shell blocks of the site exist."""
    named = []
    for page in _markdown_pages():
        for body in _shell_blocks(page.read_text(encoding="utf-8")):
            named += [(page.name, path) for path in re.findall(r"\b((?:tests|examples|scripts)/[\w/]+\.py)\b", body)]
    assert named, "no file named in any command"
    missing = [f"{page}: {path}" for page, path in named if not (REPO_ROOT / path).is_file()]
    assert not missing, "named in the docs but missing: " + ", ".join(missing)
