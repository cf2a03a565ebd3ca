"""The lessons' shape and the figures' legibility, read from the sources and the built site.

- every lesson has the same eight parts in the same order, and its exercises beside it;
- every generated figure is an inline SVG whose smallest label is at least 11 CSS pixels in the
  desktop column and in a phone's, and whose text follows the reader's colour scheme;
- no page shows a path of the machine the site was built or a run was recorded on.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LESSONS = REPO_ROOT / "docs" / "lessons"

#: The parts of a lesson, in order: a pattern each second-level heading of that part matches.
PARTS = (
    ("intuition", r"^The idea$"),
    ("worked example", r"^A worked example"),
    ("equation", r"equation|^The update equations$"),
    ("backward pass or derivation, derived", r"derived"),
    ("loop version", r"^The loop version$"),
    ("vectorised version", r"^The vectorised version"),
    ("PyTorch", r"^In PyTorch$"),
    ("exercises", r"^Exercises$"),
)

#: The content column in CSS pixels at a 1280-px window and at a 390-px phone (measured in Chromium).
COLUMN_PX, PHONE_COLUMN_PX, MIN_LABEL_PX = 688, 358, 11.0


def _headings(page: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    return [h.strip() for h in re.findall(r"^## (.+)$", text, re.M)]


def _lessons() -> list[Path]:
    return sorted(LESSONS.glob("*.md"))


def test_there_are_lessons():
    assert len(_lessons()) >= 9


@pytest.mark.parametrize("page", _lessons(), ids=lambda p: p.stem)
def test_lesson_has_the_eight_parts_in_order(page):
    headings = _headings(page)
    positions = []
    for part, pattern in PARTS:
        found = [i for i, h in enumerate(headings) if re.search(pattern, h)]
        assert found, f"{page.name}: no section for the {part} (headings: {headings})"
        positions.append(found[0])
    assert positions == sorted(positions), f"{page.name}: the parts are out of order: {headings}"


@pytest.mark.parametrize("page", _lessons(), ids=lambda p: p.stem)
def test_lesson_renders_its_exercises_file(page):
    assert (LESSONS / f"{page.stem}_exercises.py").is_file(), f"{page.name} has no {page.stem}_exercises.py"
    text = page.read_text(encoding="utf-8")
    assert f'exercise_kit.render("{page.stem}")' in text, f"{page.name} does not render its exercises"
    exercises = text[text.index("## Exercises"):]
    assert "??? success" not in exercises, f"{page.name}: exercises written in the page instead of beside it"


def test_every_exercises_file_belongs_to_a_lesson():
    orphans = [p.name for p in LESSONS.glob("*_exercises.py") if not (LESSONS / f"{p.name[:-13]}.md").is_file()]
    assert not orphans


def _figures(out: Path):
    for page in sorted(out.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r'<figure class="generated".*?</figure>', text, re.S):
            yield page.relative_to(out).as_posix(), match.group(0)


def test_figures_are_svg_with_labels_of_at_least_11_px(site):
    """Smallest label × the figure's scale on screen ≥ 11 px, in the desktop column and on a phone.

    A figure is shown at its drawn width and scaled down to fit a narrower column; one marked to
    scroll keeps its ``min-width`` on a phone instead.
    """
    out, result, _ = site
    assert result.returncode == 0
    checked, small = 0, []
    for page, figure in _figures(out):
        assert "<svg" in figure and "data:image/png;base64" not in figure.split("<svg", 1)[0], \
            f"{page}: a figure that is not an inline SVG"
        width = float(re.search(r'<svg [^>]*viewBox="0 0 ([\d.]+) [\d.]+"', figure).group(1))
        sizes = [float(v) for v in re.findall(r"font-size: ?([\d.]+)px", figure)]
        if not sizes:
            continue
        checked += 1
        smallest = min(sizes)
        min_width = re.search(r'<svg [^>]*style="min-width: (\d+)px"', figure)
        desktop = smallest * min(1.0, COLUMN_PX / width)
        phone = smallest * (float(min_width.group(1)) / width if min_width else min(1.0, PHONE_COLUMN_PX / width))
        alt = re.search(r'aria-label="([^"]*)"', figure).group(1)
        if min(desktop, phone) < MIN_LABEL_PX - 1e-6:
            small.append(f"{page}: {alt!r}: {desktop:.1f} px on a desktop, {phone:.1f} px on a phone")
    assert checked >= 20, f"only {checked} figures with labels found"
    assert not small, "labels below 11 px:\n" + "\n".join(small)


def test_figure_text_follows_the_colour_scheme(site):
    """Every label of every figure takes its colour from a theme variable, so dark mode shows it."""
    out, result, _ = site
    assert result.returncode == 0
    fixed = []
    for page, figure in _figures(out):
        for text in re.findall(r"<text\b[^>]*>", figure):
            if not re.search(r"fill: ?var\(--fig-", text):
                fixed.append(f"{page}: {html.unescape(text)[:120]}")
    assert not fixed, "labels with a fixed colour (or matplotlib's default black):\n" + "\n".join(fixed[:20])


def test_no_machine_path_on_any_page(site):
    """No page shows an absolute path of a machine (a build folder, a run's output folder)."""
    out, result, _ = site
    assert result.returncode == 0
    found = []
    for page in sorted(out.rglob("*.html")):
        text = html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))
        for match in re.finditer(r"(?<![\w.~:/-])/(?:work|tmp|home|root|Users|mnt|opt|var|srv)/[\w./-]+", text):
            found.append(f"{page.relative_to(out)}: {match.group(0)}")
    assert not found, "machine paths on the site:\n" + "\n".join(found[:20])
