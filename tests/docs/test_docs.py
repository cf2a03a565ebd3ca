"""The documentation site: it builds strictly, its numbers are the code's, it needs no network.

One ``mkdocs build --strict`` per test session (session fixture) into a temporary folder;
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
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = REPO_ROOT / "docs"


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
        shown_field = cells[column["Receptive field r"]]
        if row.whole_input and row.filters is None:  # after a linear layer: every pixel, no window size
            assert shown_field == "whole image", row.name
        else:
            assert int(shown_field.split()[0]) == row.receptive_field, row.name
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


# ----------------------------------------------------------------------------- no code host, no hooks


def test_no_request_or_link_to_a_code_host(site):
    """No page asks a code host's API (the theme does when ``repo_url`` is set) or links to a repository.

    The project has no public repository address, so any such link would lead nowhere.
    """
    out, result, _ = site
    assert result.returncode == 0
    offenders = []
    for page in out.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"""(?:href|src|data-md-source)\s*=\s*["']?[^"'>]*\b(?:api\.github\.com|github\.com|gitlab\.com)""",
                                 text, re.I):
            offenders.append(f"{page.relative_to(out)}: {match.group(0)[:120]}")
        if "md-source" in text:
            offenders.append(f"{page.relative_to(out)}: the theme's repository widget (md-source)")
    assert not offenders, "\n".join(offenders[:20])


def test_no_repo_url():
    """No ``repo_url``: the theme would ask a code host's API for the repository's stars on every page."""
    config = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert not re.search(r"^repo_url\s*:", config, re.M)


def test_search_index_holds_no_latex(site):
    """Formulas reach the page as script elements that KaTeX renders; the search index leaves them out."""
    import json

    out, result, _ = site
    assert result.returncode == 0
    docs = json.loads((out / "search" / "search_index.json").read_text(encoding="utf-8"))["docs"]
    with_latex = [d["location"] for d in docs if re.search(r"\\(frac|sum|partial|mathbb|hat|sqrt)\b", d["text"])]
    assert not with_latex, f"raw LaTeX in the search index: {with_latex[:10]}"
    pages_with_math = [p for p in out.rglob("index.html") if 'type="math/tex' in p.read_text(encoding="utf-8")]
    assert len(pages_with_math) >= 5, "no formulas found: is pymdownx.arithmatex still configured?"


# ----------------------------------------------------------------------------- what the pages are made of


def _article_words(html_text: str) -> tuple[list[str], list[str]]:
    """(prose words, code words) of a page's article: code is what sits in <pre> blocks; math and
    figures (scripts, inline SVG, images) are neither."""
    match = re.search(r'<article class="md-content__inner[^"]*">(.*?)</article>', html_text, re.S)
    article = match.group(1) if match else ""
    article = re.sub(r"<script\b.*?</script>", " ", article, flags=re.S)
    article = re.sub(r"<svg\b.*?</svg>", " ", article, flags=re.S)
    article = re.sub(r'<a class="headerlink".*?</a>', " ", article, flags=re.S)
    code = " ".join(re.findall(r"<pre\b.*?</pre>", article, re.S))
    prose = re.sub(r"<pre\b.*?</pre>", " ", article, flags=re.S)

    def words(fragment):
        return html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split()

    return words(prose), words(code)


def _pages(out: Path) -> dict[str, tuple[list[str], list[str]]]:
    return {p.parent.relative_to(out).as_posix(): _article_words(p.read_text(encoding="utf-8"))
            for p in out.rglob("index.html")}


def _teaching_pages(pages):
    return sorted(name for name in pages if name.startswith(("lessons/", "network/")))


def test_code_is_at_most_40_percent_of_lesson_and_stage_pages(site):
    """On every lesson and stage page at most 40 % of the words are code: the page teaches, the code illustrates."""
    out, result, _ = site
    assert result.returncode == 0
    pages = _pages(out)
    names = _teaching_pages(pages)
    assert len([n for n in names if n.startswith("lessons/")]) >= 6 and len(names) >= 12, names
    shares = {n: len(pages[n][1]) / max(1, len(pages[n][0]) + len(pages[n][1])) for n in names}
    too_much = {n: f"{100 * s:.1f} %" for n, s in shares.items() if s > 0.40}
    assert not too_much, f"code share above 40 %: {too_much}"


def _shingles(words: list[str], n: int = 8) -> set:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_no_two_pages_share_more_than_20_percent(site):
    """No two pages share more than 20 % of their text (8-word sequences, as a share of the shorter page).

    The API reference pages are left out: they show every public function's docstring and
    source, which the lessons quote on purpose.
    """
    out, result, _ = site
    assert result.returncode == 0
    pages = {name: _shingles(prose + code) for name, (prose, code) in _pages(out).items()
             if not name.startswith("api/")}
    assert len(pages) >= 20
    names = sorted(pages)
    shared = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            smaller = min(len(pages[a]), len(pages[b]))
            if smaller and len(pages[a] & pages[b]) / smaller > 0.20:
                shared.append(f"{a} ~ {b}: {100 * len(pages[a] & pages[b]) / smaller:.1f} %")
    assert not shared, "pages repeating each other:\n" + "\n".join(shared)


# ----------------------------------------------------------------------------- exercises


def _answers(out: Path) -> dict[str, str]:
    found = {}
    for page in (out / "lessons").rglob("index.html"):
        for key, value in re.findall(r'<span class="answer" data-answer="([^"]+)">([^<]*)</span>',
                                     page.read_text(encoding="utf-8")):
            assert key not in found, f"answer {key} appears twice"
            found[key] = html.unescape(value)
    return found


def _expected_answers() -> dict[str, str]:
    """Every exercise's answer, computed here with PyTorch (not with reference, which the pages use)."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from cifar_alexnet.model import AlexNet
    from cifar_alexnet.training.recipes import ORIGINAL

    torch.manual_seed(0)
    model = AlexNet().eval()
    inputs = {}
    hooks = [module.register_forward_hook(lambda m, i, o, name=name: inputs.__setitem__(name, (i[0], o)))
             for name, module in model.named_modules() if name]
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    conv1, conv2, conv3 = model.features[0], model.features[4], model.features[8]
    numel = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    with FlopCounterMode(display=False) as counter:
        conv3(inputs["features.8"][0])
    conv2_in = inputs["features.4"][0]
    columns = F.unfold(conv2_in, conv2.kernel_size, padding=conv2.padding)  # (1, C·k², positions)

    def grad_of(fn, x, dout=None):
        x = x.clone().requires_grad_(True)
        y = fn(x)
        y.backward(torch.ones_like(y) if dout is None else dout)
        return y.detach(), x.grad

    conv_x = torch.tensor([[1., 2, 0, 1], [0, 1, 3, 1], [2, 0, 1, 2], [1, 1, 0, 3]])[None, None]
    conv_w = torch.tensor([[1., -1], [2, 0]])[None, None]
    pool_x = torch.tensor([[1., 3, 2, 0], [4, 2, 1, 5], [0, 1, 3, 3], [2, 6, 1, 0]])[None, None]
    pool2, pool3 = model.features[7], model.features[17]
    pool2_in, pool3_in = inputs["features.7"][0], inputs["features.17"][0]
    _, covered = grad_of(lambda x: F.avg_pool2d(x, pool2.kernel_size, pool2.stride), torch.ones(pool2_in.shape[-2:])[None, None])
    _, shared = grad_of(lambda x: F.avg_pool2d(x, pool3.kernel_size, pool3.stride), torch.ones(pool3_in.shape[-2:])[None, None])
    _, pool_dx = grad_of(lambda x: F.max_pool2d(x, 2, 2), pool_x, torch.tensor([[10., 20], [30, 40]])[None, None])
    bn = torch.nn.BatchNorm1d(1).train()
    with torch.no_grad():
        bn.weight.fill_(2.0)
        bn.bias.fill_(0.5)
    bn(torch.tensor([[1.0], [2.0], [4.0], [9.0]])).backward(torch.tensor([[1.0], [0.0], [0.0], [0.0]]))
    bns = [m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    drop = model.classifier[0].train()
    _, relu_dx = grad_of(torch.relu, torch.tensor([[-2.0, 0.5, 0.0, 3.0]]))
    bn1_in = inputs["features.1"][0]
    return {
        "conv1-size-p0": f"{F.conv2d(torch.zeros(1, 3, 32, 32), conv1.weight, stride=conv1.stride).shape[-1]:,}",
        "conv3-macs": f"{counter.get_total_flops() // 2:,}",
        "conv2-params": f"{numel(conv2):,}",
        "conv2-im2col": f"{columns.shape[1]:,} × {ORIGINAL.batch_size * columns.shape[2]:,}",
        "worked-stride1": f"{F.conv2d(conv_x, conv_w, stride=1, padding=1).shape[-1]:,}",
        "pool2-unused": f"{int((covered == 0).sum()):,}",
        "pool3-size": f"{inputs['features.17'][1].shape[-1]:,}",
        "pool3-shared": f"{round(float(shared.max()) * pool3.kernel_size ** 2):,}",
        "worked-dx-sum": f"{int(pool_dx.sum()):,}",
        "bn-params": f"{sum(numel(m) for m in bns):,}",
        "bn1-values": f"{ORIGINAL.batch_size * bn1_in.shape[-1] * bn1_in.shape[-2]:,}",
        "worked-dbeta": f"{bn.bias.grad.item():g}",
        "bn8-params": f"{numel(model.classifier[9]):,}",
        "fc1-params": f"{numel(model.classifier[1]):,}",
        "flatten-length": f"{inputs['classifier.0'][0].shape[1]:,}",
        "drop-scale": f"{drop(torch.ones(10000)).max().item():g}",
        "linear-share": f"{100 * sum(numel(m) for m in linears) / numel(model):.1f} %",
        "relu-dx": f"{relu_dx[0, 2].item():g}",
        **_expected_training_answers(model),
    }


def _expected_training_answers(model) -> dict[str, str]:
    """The answers of the loss, Adam and training-step lessons, with torch.nn.functional and torch.optim."""
    import torch
    import torch.nn.functional as F

    from cifar_alexnet.training.recipes import ORIGINAL

    logits = torch.tensor([[2.0, 1.0, -1.0]], dtype=torch.float64, requires_grad=True)
    loss = F.cross_entropy(logits, torch.tensor([0]))
    loss.backward()
    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    adam = torch.optim.Adam([theta], lr=ORIGINAL.lr, betas=ORIGINAL.betas)
    theta.grad = torch.ones(1, dtype=torch.float64)
    adam.step()
    model_adam = torch.optim.Adam(model.parameters())
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    model_adam.step()
    state_values = sum(s["exp_avg"].numel() + s["exp_avg_sq"].numel() for s in model_adam.state.values())
    with torch.no_grad():
        out = model.eval()(torch.zeros(2, 3, 32, 32))  # one row per image: a batch of the recipe gives batch_size rows
    return {
        "loss-uniform": f"{F.cross_entropy(torch.zeros(1, 10, dtype=torch.float64), torch.tensor([3])).item():.4f}",
        "loss-worked": f"{loss.item():.4f}",
        "grad-row-sum": f"{abs(logits.grad.sum().item()):.0f}",
        "adam-first-step": f"{abs(theta.item()):.6f}",
        "adam-state": f"{state_values:,}",
        "adam-vhat-factor": f"{1 / (1 - adam.param_groups[0]['betas'][1]):,.0f}",
        "step-batch-512-logits": f"{ORIGINAL.batch_size} × {out.shape[1]}",
        **_expected_cache_answers(model, ORIGINAL.batch_size),
        "adam-bias-noise-step": f"{_adam_step_on_reference_bias_gradient(ORIGINAL):.2f}",
    }


def _expected_cache_answers(model, batch_size: int) -> dict[str, str]:
    """The largest forward cache, from PyTorch's shapes: what each kind of layer's backward pass needs.

    A convolution keeps its im2col matrix (``F.unfold`` of its input), BatchNorm its input and
    the normalised input, ReLU, dropout and a linear layer one array of their input's size,
    max-pool the position of each output's maximum.
    """
    import torch
    import torch.nn.functional as F

    inputs = {}
    hooks = [module.register_forward_hook(lambda m, i, o, module=module: inputs.__setitem__(module, (i[0], o)))
             for module in model.modules() if not list(module.children())]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    sizes, convs = [], 0
    for module, (x, y) in inputs.items():
        if isinstance(module, torch.nn.Conv2d):
            convs += 1
            cols = F.unfold(x, module.kernel_size, padding=module.padding, stride=module.stride)
            sizes.append((cols.numel(), f"Conv{convs}"))
        elif isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            sizes.append((2 * x.numel(), "BN"))
        elif isinstance(module, (torch.nn.ReLU, torch.nn.Dropout, torch.nn.Linear)):
            sizes.append((x.numel(), type(module).__name__))
        elif isinstance(module, torch.nn.MaxPool2d):
            sizes.append((y.numel(), "Pool"))
    numbers, name = max(sizes)
    return {"step-largest-cache": f"{name}: {numbers:,} numbers per image",
            "step-largest-cache-mb": f"{numbers * batch_size * 4 / 1e6:,.0f} MB"}


def _adam_step_on_reference_bias_gradient(recipe) -> float:
    """torch.optim.Adam's first step on Conv1's bias gradient of the lessons' float32 reference step, over lr.

    The gradient is the reference's own (rounding noise differs from one implementation to
    another); the step is PyTorch's.
    """
    import torch

    sys.path.insert(0, str(DOCS / "_helpers"))
    try:
        import lesson_train

        gradient = torch.from_numpy(lesson_train.step_run()[1].grads["features.0.bias"].copy())
    finally:
        sys.path.remove(str(DOCS / "_helpers"))
    bias = torch.zeros_like(gradient, requires_grad=True)
    adam = torch.optim.Adam([bias], lr=recipe.lr, betas=recipe.betas)
    bias.grad = gradient
    adam.step()
    return bias.detach().abs().quantile(0.5).item() / recipe.lr  # the median as NumPy takes it (mean of the middle two)


def test_exercise_answers_are_right(site):
    """Every answer shown under an exercise equals the same quantity computed independently with PyTorch."""
    out, result, _ = site
    assert result.returncode == 0
    shown, expected = _answers(out), _expected_answers()
    assert set(shown) == set(expected), f"answers without a check: {set(shown) - set(expected)}; " \
                                        f"checks without an answer: {set(expected) - set(shown)}"
    wrong = {key: (shown[key], expected[key]) for key in expected if shown[key] != expected[key]}
    assert not wrong, f"shown vs expected: {wrong}"


def test_pages_leave_the_import_path_to_the_hook():
    """No page sets ``sys.path`` itself: the site's hook puts the helpers on it once per build."""
    config = (REPO_ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^hooks\s*:\s*\n\s+- docs/_helpers/site_hooks\.py\s*$", config, re.M)
    offenders = [f"{page.relative_to(REPO_ROOT)}: {code.splitlines()[0]}" for page in _markdown_pages()
                 for info, code in _python_blocks(page.read_text(encoding="utf-8")) if "sys.path" in code]
    assert not offenders, "blocks that set sys.path:\n" + "\n".join(offenders)


def test_helpers_import_after_the_hook_alone():
    """Each page helper imports in a fresh interpreter given only what the hook's ``on_config`` sets.

    No PYTHONPATH and no working directory on ``sys.path`` (the ``mkdocs`` command's situation):
    the hook is all a plain ``mkdocs build`` in the repository root needs.
    """
    helpers = sorted(p.stem for p in (DOCS / "_helpers").glob("*.py")
                     if p.stem not in ("make_samples", "site_hooks"))
    code = ("import importlib.util, sys\n"
            "sys.path[:] = [p for p in sys.path if p not in ('', '.')]\n"
            "spec = importlib.util.spec_from_file_location('site_hooks', 'docs/_helpers/site_hooks.py')\n"
            "hooks = importlib.util.module_from_spec(spec); spec.loader.exec_module(hooks)\n"
            "hooks.on_config(None)\n" + "\n".join(f"import {name}" for name in helpers))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MPLBACKEND")}
    probe = "\nimport os, reference, cifar_alexnet\nprint(os.environ['MPLBACKEND'], reference.__file__, cifar_alexnet.__file__)"
    run = subprocess.run([sys.executable, "-c", code + probe], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    backend, *modules = run.stdout.split()
    assert backend == "Agg"
    for module in modules:  # this checkout's packages, not an installed copy elsewhere
        assert Path(module).resolve().is_relative_to(REPO_ROOT), module


class _AllTables(HTMLParser):
    """The cell texts of every <table> of a page: a list of tables, each a list of rows."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def _verification_table(out: Path, first_header: str) -> list[list[str]]:
    reader = _AllTables()
    reader.feed((out / "verification" / "index.html").read_text(encoding="utf-8"))
    return next(table for table in reader.tables if table and table[0][0] == first_header)


def test_verification_page_lists_every_test_file(site):
    """The page's inventory names every test module of tests/ and its sub-folders, with its test count."""
    out, result, _ = site
    assert result.returncode == 0, "the site did not build (see test_site_builds_strictly)"
    header, *rows = _verification_table(out, "file")
    files = sorted(p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "tests").rglob("test_*.py"))
    assert [row[0] for row in rows] == files
    for row in rows:
        source = (REPO_ROOT / row[0]).read_text(encoding="utf-8")
        assert int(row[2]) == len(re.findall(r"^(?:async )?def test_\w+", source, re.M)), row[0]


def test_verification_page_shows_the_registered_hypothesis_profiles(site):
    """Each profile row equals the settings tests/conftest.py registered for this very session."""
    from hypothesis import settings

    out, result, _ = site
    assert result.returncode == 0, "the site did not build (see test_site_builds_strictly)"
    header, *rows = _verification_table(out, "profile")
    assert {row[0] for row in rows} == {"quick", "ci", "thorough"}
    for name, examples, derandomized, deadline in rows:
        profile = settings.get_profile(name)
        assert (int(examples), derandomized, deadline) == (profile.max_examples, str(profile.derandomize),
                                                           str(profile.deadline)), name
