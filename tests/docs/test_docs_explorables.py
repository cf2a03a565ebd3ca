"""The explorable figures, operated in a real browser and checked against ``reference``.

The site's one strict build (the ``site`` fixture of conftest.py) is served on 127.0.0.1 and
opened in headless Chromium, driven by Selenium through Debian's ``chromium`` and
``chromium-driver`` packages (nothing downloads a browser). Each test operates one figure with
clicks, taps or keys, reads the numbers it shows from the page and compares them with
``reference`` (or the PyTorch model the figures are built from) for the same case; the
cases are drawn by hypothesis where there are many. After every page the browser's console
must hold no error and no request may have left 127.0.0.1.

Where Chromium or its driver is missing or does not start, the browser tests skip with one
line saying why (``.ci/run`` installs both).
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO_ROOT = Path(__file__).resolve().parents[2]
HELPERS = REPO_ROOT / "docs" / "_helpers"
PAGES = {"conv": "lessons/convolution/", "pool": "lessons/max-pool/", "rf": "receptive-fields/",
         "network": "at-a-glance/"}
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars")
#: A figure draws its cells in a fraction of a second; waits are for a loaded machine.
WAIT_S = 20
#: Browser examples per hypothesis test (the rest of the settings is the profile's, see tests/conftest.py):
#: each example is a few interactions of tens of milliseconds.
EXAMPLES = settings(max_examples=10, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
MINUS = "\u2212"


def number(text: str) -> float:
    return float(text.strip().replace(MINUS, "-"))


# ----------------------------------------------------------------------------- the browser


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def base_url(site):
    """The built site, served from a thread on 127.0.0.1; its address."""
    out, result, _ = site
    if result.returncode != 0:
        pytest.fail("the site did not build (test_site_builds_strictly says why); no figure to test")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(out)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _find(names, folders=("/usr/bin",)) -> str | None:
    for name in names:
        for folder in folders:
            path = Path(folder) / name
            if path.is_file():
                return str(path)
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium with its console and network logs on; skips (one line) where it cannot start."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("browser tests: selenium is not installed (pip install -e '.[dev]')")
    chromium = _find(("chromium", "chromium-browser"))
    driver_path = _find(("chromedriver",))
    if not chromium or not driver_path:
        pytest.skip("browser tests: Chromium or chromedriver not found (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="explorables-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    try:
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
    except WebDriverException as error:
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"browser tests: Chromium did not start: {str(error).splitlines()[0]}")
    driver.set_page_load_timeout(60)
    driver.get("about:blank")
    driver.get_log("browser"), driver.get_log("performance")  # the start page's, not the site's
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def assert_clean(driver, base_url: str) -> None:
    """No console error since the last check, and every request went to the site (or was data in the page)."""
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, "the browser console logged errors:\n" + "\n".join(errors)
    requested = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])
    # Only these schemes reach a network; data: and blob: URLs are made inside the page.
    outside = [url for url in requested if url.split(":")[0] in ("http", "https", "ws", "wss", "ftp")
               and not url.startswith(base_url)]
    assert not outside, "requests left the site: " + ", ".join(outside)


def open_figure(driver, base_url: str, kind: str, width: int = 1280):
    """Load the page of figure ``kind`` at ``width`` CSS pixels; returns the figure once its script has built it."""
    from selenium.webdriver.support.ui import WebDriverWait

    if driver.get_window_size()["width"] != width:
        driver.set_window_size(width, 1000)
    driver.get(base_url + PAGES[kind])
    selector = f'.explorable[data-explorable="{kind}"][data-ready]'
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements("css selector", selector))
    assert_clean(driver, base_url)
    return driver.find_element("css selector", selector)


class Page(NamedTuple):
    """An opened figure and the data the build wrote into it (a short repr for hypothesis's reports)."""

    kind: str
    figure: object
    data: dict

    def __repr__(self):
        return f"Page({self.kind!r})"


def opened(driver, base_url: str, kind: str) -> Page:
    figure = open_figure(driver, base_url, kind)
    return Page(kind, figure, figure_data(figure))


def figure_data(figure) -> dict:
    """The data the build wrote into the figure (its inputs: images, filters, sizes)."""
    return json.loads(figure.find_element("css selector", "script.explorable-data").get_attribute("textContent"))


def choose(figure, label: str, index: int) -> None:
    """Pick option ``index`` of the figure's select labelled ``label``."""
    from selenium.webdriver.support.ui import Select

    box = figure.parent.execute_script(
        "for (const c of arguments[0].querySelectorAll('label.xp-control')) {"
        "  if (c.querySelector('span').textContent === arguments[1]) return c.querySelector('select'); }"
        "return null;", figure, label)
    assert box is not None, f"no control labelled {label!r}"
    Select(box).select_by_index(index)


def click_cell(driver, grid, rows: int, cols: int, row: int, col: int, touch: bool = False) -> None:
    """Click (or tap) the centre of cell (row, col) of a grid drawn rows x cols in an <svg>."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", grid)
    size = grid.size
    dx = round(((col + 0.5) / cols - 0.5) * size["width"])
    dy = round(((row + 0.5) / rows - 0.5) * size["height"])
    if touch:
        actions = ActionBuilder(driver, mouse=PointerInput(interaction.POINTER_TOUCH, "finger"))
        actions.pointer_action.move_to(grid, dx, dy).pointer_down().pointer_up()
        actions.perform()
    else:
        ActionChains(driver).move_to_element_with_offset(grid, dx, dy).click().perform()


def text_of(figure, selector: str) -> str:
    return figure.find_element("css selector", selector).get_attribute("textContent")


def texts(figure, selector: str) -> list[str]:
    """The text of every element matching ``selector`` in the figure, read in one round trip."""
    return figure.parent.execute_script(
        "return Array.from(arguments[0].querySelectorAll(arguments[1]), e => e.textContent)", figure, selector)


# ----------------------------------------------------------------------------- 1. convolution


def conv_input(spec) -> np.ndarray:
    """An input of the convolution explorer as (C, H, W) float64, from the data in the page."""
    import base64

    if "values" in spec:
        return np.asarray(spec["values"], np.float64).reshape(1, spec["height"], spec["width"])
    pixels = np.frombuffer(base64.b64decode(spec["pixels"]), np.uint8)
    return pixels.reshape(len(spec["channels"]), spec["height"], spec["width"]).astype(np.float64)


def read_sum(figure):
    """The written-out sum: (cell, [(weight, input value), ...] per channel, the result)."""
    head = text_of(figure, ".xp-eq-head")
    cell = tuple(int(v) for v in re.fullmatch(r"y\[(\d+), (\d+)\] =", head.strip()).groups())
    channels = []
    for line in texts(figure, ".xp-eq-line[data-channel] .xp-terms"):
        terms = re.findall(r"\(?([\u2212\d.]+)\)?·([\u2212\d.]+)", line)
        channels.append([(number(w), number(x)) for w, x in terms])
    return cell, channels, number(text_of(figure, "output.xp-result"))


def check_conv_case(driver, figure, data, input_index, filter_index, padding, stride, where, touch=False):
    from reference.conv import conv2d_forward, conv2d_output_size

    spec = data["inputs"][input_index]
    choose(figure, "input", input_index)
    choose(figure, "filter", filter_index)
    choose(figure, "padding", data["paddings"].index(padding))
    choose(figure, "stride", data["strides"].index(stride))
    filt = spec["filters"][filter_index]
    w = np.asarray(filt["weights"], np.float64)
    x = conv_input(spec)
    k = w.shape[-1]
    size = conv2d_output_size(spec["height"], k, stride, padding)
    caption = figure.find_element("css selector", ".xp-output figcaption")
    assert int(caption.get_attribute("data-size")) == size
    assert caption.text.endswith(f"= {size} per side")
    i, j = (min(int(f * size), size - 1) for f in where)
    click_cell(driver, figure.find_element("css selector", ".xp-output svg"), size, size, i, j, touch)

    y, _ = conv2d_forward(x[None], w[None], np.array([filt["bias"]]), stride=stride, padding=padding)
    cell, channels, result = read_sum(figure)
    assert cell == (i, j)
    window = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))[:, i * stride: i * stride + k,
                                                                         j * stride: j * stride + k]
    assert len(channels) == x.shape[0]
    for c, terms in enumerate(channels):
        shown_w, shown_x = np.array(terms).T
        np.testing.assert_allclose(shown_w, w[c].ravel(), atol=5e-5)  # weights shown to 4 decimals
        np.testing.assert_array_equal(shown_x, window[c].ravel())  # pixel values and zeros are shown exactly
    assert result == pytest.approx(y[0, 0, i, j], abs=5e-5 + 1e-9 * abs(y[0, 0, i, j]))
    return y[0, 0]


@pytest.fixture(scope="module")
def conv_page(browser, base_url):
    return opened(browser, base_url, "conv")


@EXAMPLES
@given(case=st.data())
def test_conv_sums_match_reference(browser, base_url, conv_page, case):
    """Hypothesis picks the input, the filter, the padding, the stride and the output cell."""
    _, figure, data = conv_page
    input_index = case.draw(st.integers(0, len(data["inputs"]) - 1), label="input")
    filter_index = case.draw(st.integers(0, len(data["inputs"][input_index]["filters"]) - 1), label="filter")
    padding = case.draw(st.sampled_from(data["paddings"]), label="padding")
    stride = case.draw(st.sampled_from(data["strides"]), label="stride")
    where = case.draw(st.tuples(st.floats(0, 1, exclude_max=True), st.floats(0, 1, exclude_max=True)), label="cell")
    check_conv_case(browser, figure, data, input_index, filter_index, padding, stride, where)
    assert_clean(browser, base_url)


def test_conv_worked_example_output_grid(browser, base_url, conv_page):
    """Every cell of the worked example's output map, for three paddings and strides, equals reference's."""
    _, figure, data = conv_page
    worked = next(k for k, spec in enumerate(data["inputs"]) if "values" in spec)
    for padding, stride in ((1, 2), (0, 1), (2, 3)):
        y = check_conv_case(browser, figure, data, worked, 0, padding, stride, (0.99, 0.0))
        shown = texts(figure, ".xp-output svg text")
        assert len(shown) == y.size
        np.testing.assert_array_equal([number(t) for t in shown], y.ravel())
    assert_clean(browser, base_url)


def test_conv_keyboard(browser, base_url, conv_page):
    """Arrow keys, Home and PageUp move the chosen output cell; the sum follows."""
    from selenium.webdriver.common.keys import Keys

    _, figure, data = conv_page
    check_conv_case(browser, figure, data, 1, 0, 1, 1, (0.5, 0.5))
    grid = figure.find_element("css selector", ".xp-output svg")
    grid.send_keys(Keys.PAGE_UP, Keys.HOME, Keys.ARROW_DOWN, Keys.ARROW_DOWN, Keys.ARROW_RIGHT)
    assert read_sum(figure)[0] == (2, 1)
    grid.send_keys(Keys.END, Keys.PAGE_DOWN)
    size = int(figure.find_element("css selector", ".xp-output figcaption").get_attribute("data-size"))
    assert read_sum(figure)[0] == (size - 1, size - 1)
    assert_clean(browser, base_url)


# ----------------------------------------------------------------------------- 2. max-pool


def grid_values(figure, name: str) -> np.ndarray:
    """The numbers of the figure's grid ``name`` (x, y, dy, dx), as the reader sees them."""
    cells = figure.parent.execute_script(
        "return Array.from(arguments[0].querySelectorAll(arguments[1]), g => [g.dataset.row, g.textContent])",
        figure, f'svg[data-grid="{name}"] g[data-row]')
    rows = 1 + max(int(row) for row, _ in cells)
    return np.array([number(text) for _, text in cells]).reshape(rows, -1)


@pytest.fixture(scope="module")
def pool_page(browser, base_url):
    return opened(browser, base_url, "pool")


def set_backward(figure, on: bool) -> None:
    toggle = figure.find_element("css selector", "button.xp-toggle")
    if (toggle.get_attribute("aria-pressed") == "true") != on:
        toggle.click()


@EXAMPLES
@given(case=st.data())
def test_pool_routing_matches_reference(browser, base_url, pool_page, case):
    """Hypothesis picks the input, the window, the output and the pass; winners, ties and dL/dx are reference's."""
    from reference.pool import maxpool2d_backward, maxpool2d_forward

    _, figure, data = pool_page
    input_index = case.draw(st.integers(0, len(data["inputs"]) - 1), label="input")
    usable = [k for k, c in enumerate(data["inputs"][input_index]["cases"]) if c]
    window = case.draw(st.sampled_from(usable), label="window")
    backward = case.draw(st.booleans(), label="backward")
    where = case.draw(st.tuples(st.floats(0, 1, exclude_max=True), st.floats(0, 1, exclude_max=True)), label="cell")
    choose(figure, "input", input_index)
    choose(figure, "window", usable.index(window))
    set_backward(figure, backward)
    kernel, stride = data["windows"][window]["kernel"], data["windows"][window]["stride"]

    x = grid_values(figure, "x")
    y, cache = maxpool2d_forward(x[None, None], kernel, stride)
    h, w = y.shape[2:]
    i, j = min(int(where[0] * h), h - 1), min(int(where[1] * w), w - 1)
    click_cell(browser, figure.find_element("css selector", 'svg[data-grid="y"]'), h, w, i, j)
    np.testing.assert_array_equal(grid_values(figure, "y"), y[0, 0])

    first = int(cache.argmax[0, 0, i, j])
    winner = (i * stride + first // kernel, j * stride + first % kernel)
    shown = figure.find_element("css selector", ".xp-winner-name")
    assert (int(shown.get_attribute("data-row")), int(shown.get_attribute("data-col"))) == winner
    assert text_of(figure, ".xp-readout p").startswith(f"y[{i}, {j}] = max(")
    patch = x[i * stride: i * stride + kernel, j * stride: j * stride + kernel]
    ties = figure.find_elements("css selector", ".xp-ties")
    assert len(ties) == int((patch == patch.max()).sum() > 1)
    if ties:  # every position holding the maximum is named, the winner first
        named = re.findall(r"x\[(\d+), (\d+)\]", ties[0].text)
        expected = [(i * stride + u, j * stride + v) for u, v in zip(*np.nonzero(patch == patch.max()))]
        assert [tuple(map(int, t)) for t in named] == expected
        assert expected[0] == winner

    if backward:
        dy = grid_values(figure, "dy")
        dx = maxpool2d_backward(dy[None, None], cache)[0, 0]
        np.testing.assert_array_equal(grid_values(figure, "dx"), dx)
        assert number(text_of(figure, ".xp-backward output")) == dx[winner]
    else:
        assert not figure.find_elements("css selector", 'svg[data-grid="dx"]')
    assert_clean(browser, base_url)


def test_pool_worked_example_is_the_lessons(browser, base_url, pool_page):
    """The worked example with 2×2 windows routes the lesson's dL/dy exactly as reference does."""
    sys.path.insert(0, str(HELPERS))
    try:
        from lesson_pool import DOUT, X
    finally:
        sys.path.remove(str(HELPERS))
    from reference.pool import maxpool2d_backward, maxpool2d_forward

    _, figure, _ = pool_page
    choose(figure, "input", 0)
    choose(figure, "window", 0)
    set_backward(figure, True)
    np.testing.assert_array_equal(grid_values(figure, "x"), X)
    np.testing.assert_array_equal(grid_values(figure, "dy"), DOUT)
    _, cache = maxpool2d_forward(X[None, None], 2, 2)
    np.testing.assert_array_equal(grid_values(figure, "dx"), maxpool2d_backward(DOUT[None, None], cache)[0, 0])
    assert_clean(browser, base_url)


# ----------------------------------------------------------------------------- 3. receptive fields


@pytest.fixture(scope="module")
def rf_page(browser, base_url):
    return opened(browser, base_url, "rf")


def check_rf_unit(driver, figure, stage_index, i, j, touch=False):
    from reference.receptive_field import receptive_fields

    fields = {f.name: f for f in receptive_fields()}
    choose(figure, "layer", stage_index)
    name = texts(figure, "label.xp-control select option:checked")[0].split(" ")[0]
    field = fields[name]
    n = field.size
    click_cell(driver, figure.find_element("css selector", ".xp-units svg"), n, n, i, j, touch)
    shown = driver.execute_script(
        "const f = arguments[0], t = s => Array.from(f.querySelectorAll(s), e => e.textContent);"
        "return [t('.xp-field-text'), t('.xp-rows'), t('.xp-cols'), t('.xp-padding-count'), t('.xp-support')]",
        figure)
    (text,), (rows,), (cols,), (padding,), support = shown
    assert text.startswith(f"{name}, unit ({i}, {j}):")
    assert tuple(number(v) for v in rows.split("\u2026")) == field.span(i)
    assert tuple(number(v) for v in cols.split("\u2026")) == field.span(j)
    size = fields["Input"].size
    inside = [min(hi, size - 1) - max(lo, 0) + 1 for lo, hi in (field.span(i), field.span(j))]
    assert int(padding.replace(",", "")) == field.r ** 2 - inside[0] * inside[1]
    if support:  # the measured gradient lies inside the analytic field, and inside the image
        r0, r1, c0, c1 = map(int, re.findall(r"\d+", support[0]))
        assert max(field.span(i)[0], 0) <= r0 <= r1 <= min(field.span(i)[1], size - 1)
        assert max(field.span(j)[0], 0) <= c0 <= c1 <= min(field.span(j)[1], size - 1)
    return name, bool(support)


@EXAMPLES
@given(case=st.data())
def test_rf_fields_match_reference(browser, base_url, rf_page, case):
    """Hypothesis picks the layer and the unit; its span and its padding are reference.receptive_field's."""
    from reference.receptive_field import receptive_fields

    _, figure, data = rf_page
    sizes = {f.name: f.size for f in receptive_fields()}
    stage_index = case.draw(st.integers(0, len(data["stages"]) - 1), label="layer")
    n = sizes[data["stages"][stage_index]["name"]]
    i, j = case.draw(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), label="unit")
    check_rf_unit(browser, figure, stage_index, i, j)
    assert_clean(browser, base_url)


def test_rf_effective_fields_at_corners_and_centres(browser, base_url, rf_page):
    """The marked units of every layer show a measured field inside their analytic one."""
    _, figure, data = rf_page
    for stage_index, stage in enumerate(data["stages"]):
        n = stage["size"]
        for i, j in ((0, 0), ((n - 1) // 2, (n - 1) // 2), (n - 1, 0)):
            _, measured = check_rf_unit(browser, figure, stage_index, i, j)
            assert measured, f"{stage['name']} unit ({i}, {j}) shows no effective field"
            assert figure.find_elements("css selector", ".xp-row figure:last-child image")
    assert_clean(browser, base_url)


def test_rf_keyboard(browser, base_url, rf_page):
    from selenium.webdriver.common.keys import Keys

    _, figure, _ = rf_page
    check_rf_unit(browser, figure, 0, 0, 0)
    grid = figure.find_element("css selector", ".xp-units svg")
    grid.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_DOWN)
    assert text_of(figure, ".xp-field-text").startswith("Conv1, unit (1, 2):")
    assert_clean(browser, base_url)


# ----------------------------------------------------------------------------- 4. the network


@pytest.fixture(scope="module")
def network_page(browser, base_url):
    return opened(browser, base_url, "network")


def test_network_stages_match_the_layer_table(browser, base_url, network_page):
    """Every stage's numbers are reference.counts's, and the stages cover the layers in order."""
    from reference.counts import count_layers

    counts = {c.layer.name: c for c in count_layers()}
    _, figure, _ = network_page
    seen = []
    for button in figure.find_elements("css selector", "button.xp-stage"):
        button.click()
        assert button.get_attribute("aria-pressed") == "true"
        stats = {e.get_attribute("data-stat"): e.text for e in figure.find_elements("css selector", "[data-stat]")}
        rows = figure.find_elements("css selector", "table.xp-layers tbody tr")
        names = [row.get_attribute("data-layer") for row in rows]
        seen += names
        for row, name in zip(rows, names):
            cells = [td.text for td in row.find_elements("css selector", "td")]
            c = counts[name]
            assert cells == [name, " × ".join(map(str, c.out_shape)), f"{c.weights:,}", f"{c.macs:,}",
                             f"{c.torchstat_flops:,}"]
        if names:
            last = counts[names[-1]]
            assert stats["shape"] == " × ".join(map(str, last.out_shape))
            assert stats["weights"] == f"{sum(counts[n].weights for n in names):,}"
            assert stats["macs"] == f"{sum(counts[n].macs for n in names):,}"
            assert stats["flops"] == f"{sum(counts[n].torchstat_flops for n in names):,}"
        else:  # the input
            assert stats["shape"] == " × ".join(map(str, counts["Conv1"].in_shape))
    assert seen == list(counts)
    assert_clean(browser, base_url)


class ModelOutputs(NamedTuple):
    """Layer name -> output (one row per sample image), the weights' label, the images' classes."""

    captured: dict
    label: str
    classes: list

    def __repr__(self):
        return f"ModelOutputs({self.label!r})"


@pytest.fixture(scope="module")
def model_outputs():
    """Every stage's output for the explorer's sample images, from the model the site's figures use."""
    import torch

    sys.path.insert(0, str(HELPERS))
    try:
        import explorables
        from site_kit import figure_input, figure_model, samples
    finally:
        sys.path.remove(str(HELPERS))
    from reference.architecture import LAYERS

    model, label = figure_model()
    images, classes = samples()
    captured, modules = {}, dict(model.named_modules())
    def keep(name):
        return lambda module, inputs, output: captured.__setitem__(name, output.detach().clone())

    hooks = [modules[layer.key].register_forward_hook(keep(layer.name)) for layer in LAYERS if layer.key]
    with torch.no_grad():
        model(figure_input(images[list(explorables.NETWORK_IMAGES)]))
    for hook in hooks:
        hook.remove()
    return ModelOutputs(captured, label, [classes[i] for i in explorables.NETWORK_IMAGES])


@EXAMPLES
@given(case=st.data())
def test_network_feature_maps_match_the_model(browser, base_url, network_page, model_outputs, case):
    """Hypothesis picks a stage and an image; the maxima shown are those of the model's output there."""
    _, figure, data = network_page
    captured, label, classes = model_outputs
    stage_index = case.draw(st.integers(1, len(data["stages"]) - 1), label="stage")
    image = case.draw(st.integers(0, len(classes) - 1), label="image")
    figure.find_elements("css selector", "button.xp-image-choice")[image].click()
    figure.find_elements("css selector", "button.xp-stage")[stage_index].click()
    last = figure.find_elements("css selector", "table.xp-layers tbody tr")[-1].get_attribute("data-layer")
    output = captured[last][image] if last in captured else captured["Pool3"][image].flatten()  # flatten
    title = figure.find_element("css selector", ".xp-maps-title").text
    assert classes[image] in title and label in title
    if last == "BN8":
        shown = [number(e.text) for e in figure.find_elements("css selector", ".xp-logit-value")]
        np.testing.assert_allclose(shown, output.numpy(), rtol=2e-3, atol=2e-3)
        return assert_clean(browser, base_url)
    shown = [number(e.text) for e in figure.find_elements("css selector", ".xp-map-max")]
    if output.ndim == 3:
        expected = output[: len(shown)].amax(dim=(1, 2)).numpy()
        assert len(shown) == min(8, output.shape[0])
    else:
        expected = [float(output.max())]
    np.testing.assert_allclose(shown, expected, rtol=2e-3, atol=2e-3)  # shown to 3 decimals
    assert_clean(browser, base_url)


def test_network_keyboard(browser, base_url, network_page):
    from selenium.webdriver.common.keys import Keys

    _, figure, _ = network_page
    buttons = figure.find_elements("css selector", "button.xp-stage")
    buttons[0].click()
    buttons[0].send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    assert buttons[2].get_attribute("aria-pressed") == "true"
    assert browser.switch_to.active_element == buttons[2]
    buttons[2].send_keys(Keys.END)
    assert buttons[-1].get_attribute("aria-pressed") == "true"
    assert_clean(browser, base_url)


# ----------------------------------------------------------------------------- phone, dark mode, no JavaScript


def test_phone_touch(browser, base_url):
    """At 390 px: no figure is wider than the screen, and a tap picks a cell."""
    try:
        for kind in PAGES:
            figure = open_figure(browser, base_url, kind, width=390)
            overflow = browser.execute_script(
                "var r = arguments[0].getBoundingClientRect(); return [r.left, r.right, "
                "document.documentElement.clientWidth]", figure)
            assert overflow[0] >= 0 and overflow[1] <= overflow[2] + 0.5, f"{kind}: the figure is wider than the screen"
            if kind == "conv":
                check_conv_case(browser, figure, figure_data(figure), 1, 1, 2, 1, (0.2, 0.7), touch=True)
            elif kind == "rf":
                check_rf_unit(browser, figure, 4, 8, 0, touch=True)
            elif kind == "pool":
                grid = figure.find_element("css selector", 'svg[data-grid="y"]')
                click_cell(browser, grid, 3, 3, 2, 1, touch=True)
                assert text_of(figure, ".xp-readout p").startswith("y[2, 1] = max(")
            else:
                figure.find_elements("css selector", "button.xp-stage")[2].click()
                assert text_of(figure, ".xp-stage-title").startswith("Pool1")
            assert_clean(browser, base_url)
    finally:
        browser.set_window_size(1280, 1000)


def test_dark_mode_colours(browser, base_url):
    """Material's dark scheme changes the figures' colours (the grids are not left light on dark)."""
    figure = open_figure(browser, base_url, "pool")
    cell = figure.find_element("css selector", 'svg[data-grid="x"] rect.xp-cell')
    light = cell.value_of_css_property("fill")
    browser.execute_script("document.body.setAttribute('data-md-color-scheme', 'slate')")
    dark = cell.value_of_css_property("fill")
    browser.execute_script("document.body.setAttribute('data-md-color-scheme', 'default')")
    assert light != dark
    assert_clean(browser, base_url)


def test_without_javascript_the_static_figure_stays(browser, base_url):
    """With scripts off, each page shows its figure's picture, with the caption after it."""
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    try:
        for kind, page in PAGES.items():
            browser.get(base_url + page)
            figure = browser.find_element("css selector", f'.explorable[data-explorable="{kind}"]')
            assert figure.get_attribute("data-ready") is None
            picture = figure.find_element("css selector", ".explorable-static img")
            assert picture.is_displayed() and picture.get_attribute("src").startswith("data:image/png;base64,")
            caption = browser.execute_script("return arguments[0].nextElementSibling", figure)
            assert "caption" in caption.get_attribute("class")
    finally:
        browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
    assert_clean(browser, base_url)


def test_with_javascript_the_static_figure_is_replaced(browser, base_url):
    for kind in PAGES:
        figure = open_figure(browser, base_url, kind)
        assert not figure.find_element("css selector", ".explorable-static").is_displayed()
        assert figure.find_element("css selector", ".explorable-live").is_displayed()


# ----------------------------------------------------------------------------- without a browser


@pytest.mark.parametrize("kind", list(PAGES))
def test_each_page_holds_its_figure_and_a_static_picture(site, kind):
    """In the built HTML: the figure's data, a PNG picture shown until a script replaces it, the caption after it."""
    out, result, _ = site
    assert result.returncode == 0, "the site did not build"
    page = (out / PAGES[kind] / "index.html").read_text(encoding="utf-8")
    match = re.search(rf'<div class="explorable" data-explorable="{kind}"[^>]*>(.*?)</div></div>\s*<p class="caption">',
                      page, re.S)
    assert match, f"{PAGES[kind]}: no explorable figure '{kind}' followed by its caption"
    inner = match.group(1)
    data = re.search(r'<script type="application/json" class="explorable-data">(.*?)</script>', inner, re.S)
    assert data and json.loads(data.group(1))
    assert re.search(r'<div class="explorable-static"><figure class="static-fallback"[^>]*><img alt="[^"]+" '
                     r'src="data:image/png;base64,', inner)


@pytest.fixture(scope="module")
def explorables():
    """docs/_helpers/explorables.py, with its folder on sys.path while the tests use it (it imports lazily)."""
    sys.path.insert(0, str(HELPERS))
    try:
        import explorables

        yield explorables
    finally:
        sys.path.remove(str(HELPERS))


def test_learned_conv1_filters_join_the_choices_with_the_shipped_weights(explorables, monkeypatch):
    """The trained Conv1 filters, the strongest first, are offered beside the hand-made ones; an untrained net offers none."""
    model, label = explorables.figure_model()
    assert label != explorables.UNTRAINED_LABEL and "epoch" in label
    offered = explorables.conv_filters(3)
    learned = offered[len(explorables.CONV_KERNELS):]
    assert len(learned) == explorables.LEARNED_CONV1_FILTERS
    weight = model.features[0].weight.detach().double().numpy()
    norms = np.linalg.norm(weight.reshape(len(weight), -1), axis=1)
    for filt in learned:
        f = int(filt["name"].rsplit(" ", 1)[1])
        assert norms[f] >= np.sort(norms)[-explorables.LEARNED_CONV1_FILTERS]  # among the strongest
        np.testing.assert_allclose(filt["weights"], weight[f], atol=5e-4)  # rounded to 3 decimals
        assert filt["bias"] == pytest.approx(float(model.features[0].bias[f]), abs=5e-4)
    monkeypatch.setattr(explorables, "figure_model", lambda: (model, explorables.UNTRAINED_LABEL))
    assert len(explorables.conv_filters(3)) == len(explorables.CONV_KERNELS)
    assert len(explorables.conv_filters(1)) == len(explorables.CONV_KERNELS) + 1  # the worked example's own
