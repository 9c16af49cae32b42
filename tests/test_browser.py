"""The dashboard notebook in a real JupyterLab, driven through Debian's Chromium with Playwright.

JupyterLab runs as a subprocess with its config, data, runtime, settings and
workspace dirs in a temp dir, so nothing from the user's own setup leaks in
(the venv's own data dir, which holds the ipywidgets lab extension and the
kernel spec, is still found: it comes before the user's in Jupyter's path).
The test opens notebooks/03_live_pool_dashboard.ipynb, runs every cell from
the Run menu, moves the pool-size slider through its readout box and presses
Run. While the run is live it reads the view's ``data-`` attributes (frames
painted, events held, batches received) twice a second apart, checks that
the canvas is not blank from a screenshot's pixels, and at the end that the
numbers show the new size.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from poolviz.testing import free_port

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "03_live_pool_dashboard.ipynb"
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = ROOT / "docs" / "dashboard.png"
SCREENSHOTS = ROOT / "build" / "screenshots"  # copies for humans; the tests' own are under their tmp dirs
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
NEW_SIZE = 3


def browser_required() -> bool:
    """True when a missing browser must fail the test rather than skip it (CI, or asked for)."""
    return bool(os.environ.get("CI")) or os.environ.get("POOLVIZ_REQUIRE_BROWSER") == "1"


def skip_or_fail(reason: str) -> None:
    if browser_required():
        pytest.fail(f"{reason} (CI or POOLVIZ_REQUIRE_BROWSER=1 is set)")
    pytest.skip(reason)


def jupyter_dirs(base: Path, theme: str | None = None) -> dict[str, Path]:
    """Fresh Jupyter dirs: news and update prompts off, every notebook cell kept in the page, ``theme`` chosen."""
    dirs = {name: base / name for name in ("root", "config", "data", "runtime", "settings", "workspaces")}
    for path in dirs.values():
        path.mkdir(parents=True)
    # JupyterLab 4 asks whether to fetch news in a toast that covers the page; "false" answers it.
    notification = dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # Every cell stays in the page: JupyterLab 4 otherwise detaches cells scrolled out of view, and a
    # detached cell has an empty prompt and no widgets to click.
    tracker = dirs["settings"] / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    if theme is not None:
        themes = dirs["settings"] / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings"
        themes.write_text(json.dumps({"theme": theme}))
    return dirs


@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A JupyterLab server on a free port serving a copy of the dashboard notebook; stopped at teardown.

    Parametrised indirectly with a theme's name ("JupyterLab Dark"), the lab opens in that theme.
    """
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing: apt-get install chromium")
    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.exists():
        skip_or_fail(f"{jupyter} is missing: install the project's dev extras")
    dirs = jupyter_dirs(tmp_path / "lab", getattr(request, "param", None))
    shutil.copy(NOTEBOOK, dirs["root"] / NOTEBOOK.name)
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "POOLVIZ_SMALL": "1",
        "PATH": f"{jupyter.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [
        str(jupyter),
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={dirs['root']}",
        f"--LabApp.workspaces_dir={dirs['workspaces']}",
        "--ServerApp.open_browser=False",
        "--LabApp.news_url=",
        "--allow-root",  # CI runs as root
    ]
    log_path = tmp_path / "jupyterlab.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer in 90 s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.3)
        yield {"url": url, "token": token, "log": log_path, "notebook": NOTEBOOK.name, "root": dirs["root"]}
    finally:
        # The whole process group: the server and the kernel it started.
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(server.pid, sig)
                server.wait(wait)
                break
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture
def page(lab: dict[str, Any], chromium_page: Any) -> Any:
    """A Chromium page for a test that uses the JupyterLab server."""
    return chromium_page


@pytest.fixture
def chromium_page() -> Iterator[Any]:
    """A Chromium page (Debian's binary, not Playwright's download); the browser is closed at teardown."""
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1700})
            tab.set_default_timeout(60_000)
            yield tab
        finally:
            browser.close()


KERNEL_IDLE = """() => {
    const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator');
    const bar = document.querySelector('.jp-StatusBar-Widget');
    return indicator?.dataset.status === 'idle' && /\\| Idle/.test(bar?.innerText ?? '');
}"""

ALL_CELLS_RAN = """() => {
    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
    return prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p.innerText.trim()));
}"""


LIVE = ".poolviz-dashboard .poolviz-live"


def live_numbers(page: Any) -> dict[str, float]:
    """The view's data- attributes (frames painted, events held, batches received, measured fps) as numbers."""
    data = page.eval_on_selector(LIVE, "el => ({...el.dataset})")
    return {k: float(v) for k, v in data.items() if k in ("frames", "events", "batches", "fps", "t", "lost")} | {
        "running": data.get("running") == "true"
    }


def canvas_colours(png: bytes) -> tuple[float, int]:
    """The share of non-white pixels in a screenshot and how many distinct colours it has."""
    import io

    import numpy as np
    from matplotlib import image

    pixels = (image.imread(io.BytesIO(png), format="png")[..., :3] * 255).astype(np.uint8)
    flat = pixels.reshape(-1, 3)
    painted = float((flat.min(axis=1) < 235).mean())
    return painted, len(np.unique(flat, axis=0))


def test_the_browser_paints_the_live_run_on_a_canvas(lab: dict[str, Any], page: Any, tmp_path: Path) -> None:
    """In JupyterLab: run all cells, set max_connections to 3, press Run; the canvas paints frames while it runs."""
    page.goto(f"{lab['url']}/lab/tree/{lab['notebook']}?token={lab['token']}")
    # The status bar reads "Python 3 (ipykernel) | Idle" and the toolbar's indicator has data-status="idle".
    page.wait_for_function(KERNEL_IDLE, timeout=90_000)

    page.click('.lm-MenuBar-itemLabel:text-is("Run")')
    page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
    page.wait_for_function(ALL_CELLS_RAN, timeout=120_000)
    dashboard = page.locator(".poolviz-dashboard")
    dashboard.wait_for()
    page.locator(LIVE).wait_for()
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0

    readout = page.locator(".poolviz-max-connections .widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(NEW_SIZE))
    page.keyboard.press("Enter")
    page.wait_for_function(
        "n => document.querySelector('.poolviz-max-connections [role=slider]').getAttribute('aria-valuenow') == n",
        arg=NEW_SIZE,
    )

    page.locator("button.poolviz-run").click()
    page.wait_for_function(
        "sel => { const d = document.querySelector(sel)?.dataset; return d && d.running === 'true' && +d.events > 0; }",
        arg=LIVE,
        timeout=20_000,
    )
    first, began = live_numbers(page), time.monotonic()
    page.wait_for_timeout(1000)
    second, ended = live_numbers(page), time.monotonic()
    fps = (second["frames"] - first["frames"]) / (ended - began)
    print(f"\nlive view in Chromium: {fps:.1f} frames/s painted, data- attributes {second}")
    assert second["running"], "the run ended before the second sample: make RUN_SECONDS longer"
    assert second["events"] > first["events"] > 0
    assert second["batches"] > first["batches"]
    assert 5 <= fps <= 31  # drawing while live, and never above the 30 fps cap (plus rounding)
    canvas_png = page.locator(f"{LIVE} canvas").screenshot()
    painted, colours = canvas_colours(canvas_png)
    assert painted > 0.02 and colours > 20, (painted, colours)

    page.wait_for_function("() => /finished/.test(document.querySelector('.poolviz-status').innerText)")
    page.wait_for_function(
        "n => document.querySelector('.poolviz-stat-max_connections')?.innerText.trim() === String(n)",
        arg=NEW_SIZE,
    )
    assert "Run finished" in page.locator(".poolviz-message").inner_text()
    assert int(page.locator(".poolviz-stat-requests").inner_text()) > 0
    # After the run every event the kernel recorded is held by the browser.
    final = live_numbers(page)
    assert not final["running"] and final["events"] >= second["events"] and final["lost"] == 0

    dashboard.scroll_into_view_if_needed()
    (tmp_path / "canvas.png").write_bytes(canvas_png)
    page.screenshot(path=str(tmp_path / "jupyterlab.png"))
    dashboard.screenshot(path=str(tmp_path / "dashboard.png"))
    if os.environ.get("POOLVIZ_UPDATE_SCREENSHOT") == "1":  # how docs/dashboard.png is made
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copy(tmp_path / "dashboard.png", SCREENSHOT)


REPLAY_AND_COMPARE = [
    "import tempfile\n"
    "import poolviz\n"
    "from poolviz.widgets import Compare, Replay\n"
    "from poolviz.workload import run_closed_loop\n"
    "db = poolviz.connect(f'sqlite+pool:///{tempfile.mkdtemp()}/r.db', max_connections=2)\n"
    "run_closed_loop(db, workers=3, requests=20, hold=0.003)\n"
    "db.close_all()\n"
    "held = len(db.events)",
    "replay = Replay(db.events)\nreplay",
    "compare = Compare(configs=[{'max_connections': 1}, {'max_connections': 3}], workers=3, requests=10, hold_ms=3)\n"
    "compare.run(wait=True)\n"
    "compare",
    "middle = (replay.t_start + replay.t_end) / 2\nreplay.seek(middle)\nprint(f'held={held} middle={middle:.6f}')",
]


def open_and_run_all(lab: dict[str, Any], page: Any, name: str, cells: Sequence[str]) -> None:
    """Write ``cells`` as notebook ``name`` in the lab's folder, open it once its kernel is idle, and Run All Cells."""
    import nbformat

    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(code) for code in cells],
        # Named kernel, so JupyterLab starts it without asking.
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}},
    )
    nbformat.write(notebook, lab["root"] / name)
    page.goto(f"{lab['url']}/lab/tree/{name}?token={lab['token']}")
    page.wait_for_function(KERNEL_IDLE, timeout=90_000)
    page.click('.lm-MenuBar-itemLabel:text-is("Run")')
    page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')


def test_replay_and_compare_draw_in_the_browser(lab: dict[str, Any], page: Any, tmp_path: Path) -> None:
    """A Replay and a finished Compare, shown after their events were sent, paint them all; seeking moves the view."""
    open_and_run_all(lab, page, "replay_compare.ipynb", REPLAY_AND_COMPARE)
    page.wait_for_function(ALL_CELLS_RAN, timeout=120_000)
    stdout = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stdout']")
    printed = dict(part.split("=") for part in stdout.inner_text().split())
    held, middle = int(printed["held"]), float(printed["middle"])
    replay = ".poolviz-replay .poolviz-live"
    page.wait_for_function("([sel, n]) => +document.querySelector(sel)?.dataset.events === n", arg=[replay, held])
    page.wait_for_function(
        "sel => [...document.querySelectorAll(sel)].length === 2 && "
        "[...document.querySelectorAll(sel)].every(el => +el.dataset.events > 0 && +el.dataset.frames > 0)",
        arg=".poolviz-compare .poolviz-live",
    )
    # The last cell moved the cursor to the middle of the trace: the view draws up to the synced cursor_t.
    page.wait_for_function(
        "([sel, t]) => Math.abs(+document.querySelector(sel).dataset.t - t) < 1e-3", arg=[replay, middle]
    )
    painted, colours = canvas_colours(page.locator(f"{replay} canvas").screenshot())
    assert painted > 0.02 and colours > 10, (painted, colours)
    page.locator(".poolviz-replay").screenshot(path=str(tmp_path / "replay.png"))
    page.locator(".poolviz-compare").screenshot(path=str(tmp_path / "compare.png"))


STARVATION = [
    "from poolviz.widgets import PoolDashboard\n"
    "dash = PoolDashboard(check_servers=False, workers=8, max_connections=2, hold_ms=40, think_ms=0,\n"
    "                     distribution='exp', duration=60)\n"
    "dash",
    "dash.run()",
]

STARVING = """sel => {
    const d = document.querySelector(sel)?.dataset;
    return d && d.running === 'true' && +d.waiting > 0 && +d.oldestWaitMs > 1000 ? {...d} : null;
}"""


def test_the_live_strip_shows_a_wait_in_progress_while_workers_starve(
    lab: dict[str, Any], page: Any, tmp_path: Path
) -> None:
    """8 workers, pool 2, 40 ms holds, think 0: live, the strip shows the oldest waiter's age and who starves."""
    open_and_run_all(lab, page, "starvation.ipynb", STARVATION)
    page.locator(LIVE).wait_for()
    # Barging: two workers take nearly every checkout, six wait; the oldest waiter's age grows past a second.
    first = page.wait_for_function(STARVING, arg=LIVE, timeout=60_000).json_value()
    assert float(first["waitP99Ms"]) > 0 and float(first["checkoutsMin"]) == 0 and int(first["starved"]) >= 1
    assert int(first["workers"]) == 8 and float(first["checkoutsMax"]) > 0
    assert float(first["longestWaitMs"]) >= float(first["oldestWaitMs"]) - 1
    strip = page.locator(f"{LIVE} .poolviz-live-numbers").inner_text()
    assert "oldest wait" in strip and "ongoing counted" in strip and "never served" in strip
    # The age keeps growing while the worker waits: the strip is refreshed while live, between batches too.
    page.wait_for_function(
        "([sel, ms]) => +document.querySelector(sel).dataset.oldestWaitMs > ms + 500",
        arg=[LIVE, float(first["oldestWaitMs"])],
        timeout=30_000,
    )
    painted, colours = canvas_colours(page.locator(f"{LIVE} canvas").screenshot())
    assert painted > 0.02 and colours > 20, (painted, colours)
    page.locator(".poolviz-dashboard").screenshot(path=str(tmp_path / "starving.png"))
    print(f"\nstarving: {first}\n{strip}")
    page.locator("button.poolviz-stop").click()
    page.wait_for_function("() => /stopped/.test(document.querySelector('.poolviz-status').innerText)")


THEMED_RUN = [
    "from poolviz.widgets import PoolDashboard\n"
    "dash = PoolDashboard(check_servers=False, workers=6, max_connections=2, hold_ms=15, think_ms=2,\n"
    "                     distribution='exp', duration=2.5)\n"
    "dash",
    "dash.run()",
]
LIGHT, DARK = "JupyterLab Light", "JupyterLab Dark"

VIEW_STATE = """el => {
    const strip = el.querySelector('.poolviz-live-numbers');
    const backgrounds = [];
    for (let node = strip; node; node = node.parentElement) backgrounds.push(getComputedStyle(node).backgroundColor);
    return { ...el.dataset, stripColour: getComputedStyle(strip).color, backgrounds,
             canvasWidth: el.querySelector('canvas').width, bodyTheme: document.body.dataset.jpThemeName };
}"""

# Asleep: no animation frame pending, the run over, and no theme re-check still to come.
ASLEEP = """sel => {
    const d = document.querySelector(sel)?.dataset;
    return d && d.sleeping === 'true' && d.running === 'false' && (d.themeChecks ?? '0') === '0';
}"""


def rgba(css: str) -> tuple[float, float, float, float]:
    """``rgb(r, g, b)``, ``rgba(r, g, b, a)`` or ``#rrggbb`` as four numbers (channels 0-255, alpha 0-1)."""
    if css.startswith("#"):
        return (int(css[1:3], 16), int(css[3:5], 16), int(css[5:7], 16), 1.0)
    parts = [float(x) for x in css[css.index("(") + 1 : css.index(")")].replace("/", ",").split(",")]
    return (parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else 1.0)


def over(top: tuple[float, ...], below: tuple[float, ...]) -> tuple[float, float, float, float]:
    """``top`` composited over an opaque ``below``."""
    a = top[3]
    return (top[0] * a + below[0] * (1 - a), top[1] * a + below[1] * (1 - a), top[2] * a + below[2] * (1 - a), 1.0)


def effective_background(backgrounds: list[str]) -> tuple[float, float, float, float]:
    """What shows behind an element: its ancestors' backgrounds (innermost first) over the browser's white."""
    colour: tuple[float, float, float, float] = (255.0, 255.0, 255.0, 1.0)
    for css in reversed(backgrounds):
        colour = over(rgba(css), colour)
    return colour


def contrast(fg: tuple[float, ...], bg: tuple[float, ...]) -> float:
    """WCAG contrast ratio of ``fg`` (composited over ``bg``) against ``bg``: 1 to 21."""

    def lum(c: tuple[float, ...]) -> float:
        lin = [(x / 255) / 12.92 if x / 255 <= 0.03928 else ((x / 255 + 0.055) / 1.055) ** 2.4 for x in c[:3]]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    a, b = lum(over(fg, bg)), lum(bg)
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


def mean_luminance(png: bytes) -> float:
    """Mean Rec. 709 luma of a screenshot's pixels (0 black, 1 white), as the issue measured the white block."""
    import io

    import numpy as np
    from matplotlib import image

    pixels = image.imread(io.BytesIO(png), format="png")[..., :3]
    return float((pixels @ np.array([0.2126, 0.7152, 0.0722])).mean())


def themed_look(page: Any, name: str, tmp_path: Path) -> dict[str, Any]:
    """Screenshot the live view as ``name``.png (kept in tmp_path and build/screenshots) and measure it."""
    state = page.eval_on_selector(LIVE, VIEW_STATE)
    png = page.locator(LIVE).screenshot()
    (tmp_path / f"{name}.png").write_bytes(png)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / f"{name}.png", SCREENSHOTS / f"{name}.png")
    background = effective_background(state["backgrounds"])
    look = {
        "theme": state["theme"],
        "luminance": mean_luminance(png),
        "strip_contrast": contrast(rgba(state["stripColour"]), background),
        "canvas_contrast": contrast(rgba(state["fg"]), rgba(state["bg"])),
    }
    print(f"\n{name}: {state['bodyTheme']}: {look}")
    return look


def assert_reads_well(look: dict[str, Any], theme: str) -> None:
    if theme == DARK:
        assert look["theme"] == "dark" and look["luminance"] < 0.35, look
    else:
        assert look["theme"] == "light" and look["luminance"] > 0.65, look
    assert look["strip_contrast"] >= 4.5 and look["canvas_contrast"] >= 4.5, look


def switch_theme(page: Any, theme: str) -> None:
    """Settings > Theme > ``theme``, as a user does it, and wait until JupyterLab says it is applied."""
    page.click('.lm-MenuBar-itemLabel:text-is("Settings")')
    page.hover('.lm-Menu-itemLabel:text-is("Theme")')
    page.click(f'.lm-Menu-itemLabel:text-is("{theme}")')
    page.wait_for_function("name => document.body.dataset.jpThemeName === name", arg=theme)


def assert_stays_asleep(page: Any, selector: str = LIVE) -> dict[str, str]:
    """The loop is asleep and stays so: no frame drawn and no animation frame run for a second."""
    page.wait_for_function(ASLEEP, arg=selector)
    before = page.eval_on_selector(selector, "el => ({...el.dataset})")
    # Idleness is the absence of frames over a span, so this waits for time itself, not for a condition.
    page.wait_for_timeout(1000)
    after = page.eval_on_selector(selector, "el => ({...el.dataset})")
    assert (after["frames"], after["ticks"], after["sleeping"]) == (before["frames"], before["ticks"], "true")
    return after


@pytest.mark.parametrize("lab", [LIGHT, DARK], indirect=True)
def test_the_live_view_reads_well_in_each_theme_and_follows_a_switch(
    lab: dict[str, Any], page: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Opened in one theme, a short live run reads well (luminance, contrast), sleeps, follows resizes and a switch."""
    theme = request.node.callspec.params["lab"]
    other = DARK if theme == LIGHT else LIGHT
    slug = "dark" if theme == DARK else "light"
    open_and_run_all(lab, page, "themed.ipynb", THEMED_RUN)
    page.wait_for_function("name => document.body.dataset.jpThemeName === name", arg=theme)
    page.locator(LIVE).wait_for()
    page.wait_for_function("sel => +document.querySelector(sel)?.dataset.batches > 0", arg=LIVE, timeout=60_000)
    page.wait_for_function(ASLEEP, arg=LIVE, timeout=60_000)
    page.locator(LIVE).scroll_into_view_if_needed()
    assert_reads_well(themed_look(page, f"live_{slug}", tmp_path), theme)
    if os.environ.get("POOLVIZ_UPDATE_SCREENSHOT") == "1":  # how docs/live_view_light.png and _dark.png are made
        shutil.copy(tmp_path / f"live_{slug}.png", ROOT / "docs" / f"live_view_{slug}.png")
    page.locator(".poolviz-dashboard").screenshot(path=str(tmp_path / f"dashboard_{slug}.png"))
    shutil.copy(tmp_path / f"dashboard_{slug}.png", SCREENSHOTS / f"dashboard_{slug}.png")
    idle = assert_stays_asleep(page)

    # Hover wakes the loop for the crosshair; then it sleeps again.
    page.locator(f"{LIVE} canvas").hover(position={"x": 300, "y": 40})
    page.wait_for_function(
        "([sel, n]) => +document.querySelector(sel).dataset.frames > n", arg=[LIVE, int(idle["frames"])]
    )
    page.mouse.move(0, 0)
    idle = assert_stays_asleep(page)

    # A narrower window: the ResizeObserver wakes the loop, the canvas follows the panel's width.
    width, canvas_width = int(idle["width"]), page.eval_on_selector(LIVE, VIEW_STATE)["canvasWidth"]
    page.set_viewport_size({"width": 1000, "height": 1700})
    page.wait_for_function("([sel, w]) => +document.querySelector(sel).dataset.width < w - 200", arg=[LIVE, width])
    idle = assert_stays_asleep(page)
    state = page.eval_on_selector(LIVE, VIEW_STATE)
    assert state["canvasWidth"] < canvas_width - 200 and int(idle["frames"]) > 0

    # The other theme, chosen in the menu: the view restyles without a re-run (same batches, same events).
    switch_theme(page, other)
    page.wait_for_function(
        "([sel, t]) => document.querySelector(sel).dataset.theme === t",
        arg=[LIVE, "dark" if other == DARK else "light"],
    )
    switched = assert_stays_asleep(page)
    assert (switched["batches"], switched["events"]) == (idle["batches"], idle["events"])
    assert int(switched["frames"]) > int(idle["frames"])
    page.locator(LIVE).scroll_into_view_if_needed()
    assert_reads_well(
        themed_look(page, f"live_{slug}_switched_to_{'dark' if other == DARK else 'light'}", tmp_path), other
    )


PLAIN_PAGE = """async ([src, state]) => {
    // The view's module in a page without JupyterLab, with a model that does what anywidget's does.
    const mod = await import(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
    const handlers = {};
    const model = {
        get: (k) => state[k],
        set: (k, v) => { state[k] = v; (handlers['change:' + k] || []).forEach((f) => f()); },
        save_changes: () => {},
        send: () => {},
        on: (name, f) => { (handlers[name] = handlers[name] || []).push(f); },
        off: (name, f) => { handlers[name] = (handlers[name] || []).filter((g) => g !== f); },
    };
    window.poolvizMessage = (msg, buffers) => (handlers['msg:custom'] || []).forEach((f) => f(msg, buffers));
    mod.default.initialize({ model });
    mod.default.render({ model, el: document.querySelector('#view') });
}"""

SEND = """([msg, buffers]) => window.poolvizMessage(msg, buffers.map((b) => {
    const raw = Uint8Array.from(atob(b), (c) => c.charCodeAt(0));
    return new DataView(raw.buffer);
}))"""


def test_on_a_plain_page_the_view_is_light_sleeps_follows_its_box_and_a_theme(
    chromium_page: Any, tmp_path: Path
) -> None:
    """Without JupyterLab's variables the view uses light fallbacks; it sleeps, redraws on resize and on a theme."""
    import base64

    import poolviz
    from poolviz.live.view import LiveView, esm_source
    from poolviz.workload import run_closed_loop

    page = chromium_page
    view = LiveView()
    state = {name: getattr(view, name) for name in LiveView.class_own_traits(sync=True)}
    page.set_content('<body><div id="box" style="width:900px"><div id="view"></div></div></body>')
    page.evaluate(PLAIN_PAGE, [esm_source(), state])
    db = poolviz.connect(f"sqlite+pool:///{tmp_path / 'plain.db'}", max_connections=2)
    run_closed_loop(db, workers=3, requests=20, hold=0.002)
    db.close_all()
    events = db.events.snapshot()
    header, buffers = view.packer.pack(events)
    page.evaluate(SEND, [{"type": "reset", "max_connections": 2, "wire": view.wire}, []])
    header.update(type="events", now=events[-1].t, lost=0, dropped=0)
    page.evaluate(SEND, [header, [base64.b64encode(b).decode() for b in buffers]])
    page.evaluate(SEND, [{"type": "end", "t": events[-1].t}, []])
    live = "#view"
    page.wait_for_function(ASLEEP, arg=live)
    idle = assert_stays_asleep(page, live)
    assert int(idle["events"]) == len(events) and int(idle["frames"]) >= 1
    assert (idle["theme"], idle["bg"], idle["width"]) == ("light", "#ffffff", "898")
    assert contrast(rgba(idle["fg"]), rgba(idle["bg"])) >= 4.5

    page.eval_on_selector("#box", "box => { box.style.width = '500px'; }")
    # The canvas fills its box inside a 1 px border.
    page.wait_for_function("sel => +document.querySelector(sel).dataset.width === 498", arg=live)
    resized = assert_stays_asleep(page, live)
    assert int(resized["frames"]) > int(idle["frames"])

    # A theme that sets JupyterLab's variables and says so on <body>, as JupyterLab does.
    page.evaluate(
        """() => {
        document.body.style.setProperty('--jp-layout-color0', '#111111');
        document.body.style.setProperty('--jp-ui-font-color1', 'rgba(255, 255, 255, 0.87)');
        document.body.dataset.jpThemeLight = 'false';
    }"""
    )
    page.wait_for_function("sel => document.querySelector(sel).dataset.theme === 'dark'", arg=live)
    dark = assert_stays_asleep(page, live)
    assert dark["bg"] == "#111111" and contrast(rgba(dark["fg"]), rgba(dark["bg"])) >= 4.5
    assert mean_luminance(page.locator(f"{live} canvas").screenshot()) < 0.35


FOLLOWED_APPS = [
    "import pathlib, subprocess, sys, tempfile\n"
    "from poolviz.live.follow import follow\n"
    "base = pathlib.Path(tempfile.mkdtemp())\n"
    "(base / 'rec').mkdir()\n"
    "(base / 'app.py').write_text({app!r})\n"
    "apps = [subprocess.Popen([sys.executable, 'app.py', str(base / 'rec'), str(base / f'shop{{i}}.db')], cwd=base,\n"
    "                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for i in range(2)]\n"
    "print('pids=' + ','.join(str(a.pid) for a in apps), [a.stdout.readline().strip() for a in apps])",
    "followed = follow(base / 'rec', name='shop', interval_s=0.1, window_s=2, height=360)\nfollowed",
]
FOLLOW = ".poolviz-follow .poolviz-live"

TABLE_STATE = """el => {
    const cell = el.querySelector('.poolviz-live-holders td'), tip = el.querySelector('.poolviz-live-tip');
    const chain = (node) => {
        const out = [];
        for (; node; node = node.parentElement) out.push(getComputedStyle(node).backgroundColor);
        return out;
    };
    return { caption: el.querySelector('.poolviz-live-holders-caption').innerText,
             heads: [...el.querySelectorAll('.poolviz-live-holders th')].map((th) => th.innerText),
             rows: [...el.querySelectorAll('tr.poolviz-live-holder')]
                 .map((tr) => [...tr.children].map((td) => td.innerText)),
             cellColour: getComputedStyle(cell).color, cellBackgrounds: chain(cell),
             tipColour: getComputedStyle(tip).color, tipBackgrounds: chain(tip), tip: tip.innerText };
}"""


@pytest.mark.parametrize("lab", [LIGHT, DARK], indirect=True)
def test_following_a_recording_shows_each_holds_site_on_hover_and_who_holds_what(
    lab: dict[str, Any], page: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two app processes recorded and followed: hovering each one's held bar shows its site; the table lists both."""
    from test_live_follow import APP, REPORT_SITE

    slug = "dark" if request.node.callspec.params["lab"] == DARK else "light"
    open_and_run_all(lab, page, "follow.ipynb", [FOLLOWED_APPS[0].format(app=APP), FOLLOWED_APPS[1]])
    page.wait_for_function(ALL_CELLS_RAN, timeout=120_000)
    printed = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stdout']").inner_text()
    pids = printed.split()[0].removeprefix("pids=").split(",")
    page.locator(FOLLOW).wait_for()
    # Both processes' reporters hold a connection, and the axis has moved a window past their checkouts.
    page.wait_for_function(
        "sel => { const d = document.querySelector(sel)?.dataset; return d && +d.holders === 2 && +d.t > 3; }",
        arg=FOLLOW,
        timeout=60_000,
    )
    view = page.locator(FOLLOW)
    view.scroll_into_view_if_needed()
    data = page.eval_on_selector(FOLLOW, "el => ({...el.dataset})")
    canvas = page.locator(f"{FOLLOW} canvas")
    width = canvas.bounding_box()["width"]
    hovered = []
    for lane in range(int(data["lanes"])):
        y = float(data["laneTop"]) + (lane + 0.5) * float(data["laneHeight"])
        canvas.hover(position={"x": width - 30, "y": y})
        page.wait_for_function(
            "sel => document.querySelector(sel + ' .poolviz-live-tip').style.display === 'block'", arg=FOLLOW
        )
        state = page.eval_on_selector(FOLLOW, TABLE_STATE)
        hovered.append((page.eval_on_selector(FOLLOW, "el => el.dataset.hoverSite"), state["tip"]))
        if lane == 0:
            view.screenshot(path=str(tmp_path / f"follow_hover_{slug}.png"))
    assert [site for site, _tip in hovered] == [REPORT_SITE, REPORT_SITE], hovered
    assert sorted(tip.split("\n")[0].rsplit(" ", 1)[-1] for _site, tip in hovered) == sorted(pids)
    assert all(f"site {REPORT_SITE}" in tip and "thread reporter" in tip for _site, tip in hovered)

    page.mouse.move(0, 0)
    state = page.eval_on_selector(FOLLOW, TABLE_STATE)
    assert state["heads"] == ["process", "connection", "holder (thread or task)", "checkout site", "held for"]
    assert sorted((row[0], row[2], row[3]) for row in state["rows"]) == sorted(
        (p, "reporter", REPORT_SITE) for p in pids
    )
    assert state["caption"].startswith("holders now: 2 connections held, longest first")
    reads = contrast(rgba(state["cellColour"]), effective_background(state["cellBackgrounds"]))
    tip = contrast(rgba(state["tipColour"]), effective_background(state["tipBackgrounds"]))
    print(f"\nfollow ({slug}): holders {state['rows']}, table contrast {reads:.1f}, tooltip contrast {tip:.1f}")
    assert reads >= 4.5 and tip >= 4.5 and data["theme"] == slug
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    view.screenshot(path=str(tmp_path / f"follow_{slug}.png"))
    for name in (f"follow_{slug}.png", f"follow_hover_{slug}.png"):
        shutil.copy(tmp_path / name, SCREENSHOTS / name)
