"""A real-browser test: JupyterLab in headless Chromium, driven by Playwright.

It starts JupyterLab from this environment on a free loopback port with a token (smoke budget),
opens notebook 02, runs all cells, moves the latent interpolation slider with the keyboard, checks
that the displayed image changed, and saves screenshots under ``build/browser/``.

Needs Debian's Chromium at /usr/bin/chromium (``apt-get install chromium``; ``.ci/run`` installs it)
and the ``playwright`` Python package (the ``test`` extra).  Playwright's own browser downloads are
not used.  ``LECTURE_UTILS_CHROMIUM`` points at another Chromium binary.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/02_vae_elbo.ipynb"
CHROMIUM = os.environ.get("LECTURE_UTILS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-dev-shm-usage"]
SERVER_START_S = 120
RUN_ALL_S = 420

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                       reason=f"no Chromium at {CHROMIUM}: install Debian's chromium "
                              "(sudo apt-get install chromium) or set LECTURE_UTILS_CHROMIUM to enable "
                              "the browser test"),
    pytest.mark.timeout(RUN_ALL_S + SERVER_START_S + 120),
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(port: int, token: str, path: str, method: str = "GET", timeout: float = 5.0):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else None


def write_lab_settings(settings_dir: Path) -> None:
    """Render every cell (no windowing), no news or update checks: a quiet, deterministic Lab."""
    for plugin, values in {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false", "checkForUpdates": False},
    }.items():
        path = settings_dir / plugin
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@pytest.fixture
def jupyter_lab():
    """JupyterLab on a free loopback port with a token; always shut down (kernels included)."""
    port, token = free_port(), secrets.token_hex(16)
    scratch = Path(tempfile.mkdtemp(prefix="lecture-utils-browser-"))
    write_lab_settings(scratch / "settings")
    # JupyterLab saves the notebook it runs: serve a copy, so the repository's notebook stays clean
    work = scratch / "work"
    (work / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / NOTEBOOK, work / NOTEBOOK)
    env = {**os.environ, "LECTURE_UTILS_BUDGET": "smoke", "LECTURE_UTILS_OFFLINE": "1",
           "JUPYTERLAB_SETTINGS_DIR": str(scratch / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(scratch / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"), "PYTHONUNBUFFERED": "1"}
    env.pop("MPLBACKEND", None)  # the kernel draws inline figures, as for a student
    log = open(scratch / "jupyter.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--port-retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.terminals_enabled=False", "--allow-root"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {server.returncode}: "
                                   f"{(scratch / 'jupyter.log').read_text()[-2000:]}")
            try:
                api(port, token, "/api/status")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not answer within {SERVER_START_S} s")
                time.sleep(0.5)
        yield port, token, scratch
    finally:
        try:  # a clean shutdown stops the kernels too
            api(port, token, "/api/shutdown", method="POST")
            server.wait(timeout=20)
        except Exception:
            pass
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)


def test_notebook_02_runs_in_jupyterlab_and_the_slider_moves_the_image(jupyter_lab):
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is missing: pip install -e '.[test]' to enable")
    port, token, _ = jupyter_lab
    shots = ROOT / "build" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK}?token={token}")
            page.wait_for_function(
                "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                " && window.jupyterapp.shell.currentWidget.sessionContext"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.connectionStatus"
                "    === 'connected'"
                " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                timeout=SERVER_START_S * 1000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            # done when every code cell has an execution count and the kernel is idle again
            page.wait_for_function(
                """() => {
                    const panel = window.jupyterapp.shell.currentWidget;
                    const cells = panel.content.widgets.filter(c => c.model.type === 'code');
                    const kernel = panel.sessionContext.session.kernel;
                    const errors = panel.node.querySelectorAll('[data-mime-type="application/vnd.jupyter.error"]');
                    return errors.length > 0 || (kernel.status === 'idle'
                        && cells.every(c => c.model.executionCount !== null));
                }""", timeout=RUN_ALL_S * 1000, polling=1000)
            errors = page.locator('[data-mime-type="application/vnd.jupyter.error"]')
            if errors.count():
                page.screenshot(path=str(shots / "02_vae_elbo_error.png"), full_page=False)
                pytest.fail(f"a cell raised an error in JupyterLab: {errors.first.inner_text()[-1500:]}")

            image = page.locator(".latent-explorer .latent-explorer-image").first
            image.scroll_into_view_if_needed()
            page.wait_for_function(  # the first frame has loaded
                "() => { const i = document.querySelector('.latent-explorer-image');"
                " return i && i.complete && i.naturalWidth > 0; }", timeout=30_000)
            before_src = image.get_attribute("src")
            before = image.screenshot()
            page.screenshot(path=str(shots / "02_vae_elbo_explorer_t0.png"))
            handle = page.locator(".latent-explorer .noUi-handle").first
            handle.focus()
            changed = ("src => { const i = document.querySelector('.latent-explorer-image');"
                       " return i.src !== src && i.complete && i.naturalWidth > 0; }")
            start = time.perf_counter()
            page.keyboard.press("ArrowRight")  # one step: browser -> kernel -> new frame -> browser
            page.wait_for_function(changed, arg=before_src, timeout=30_000, polling=5)
            one_step_ms = (time.perf_counter() - start) * 1000
            for _ in range(5):
                page.keyboard.press("ArrowRight")
            page.wait_for_timeout(300)
            (shots / "timing.json").write_text(json.dumps({"slider_step_round_trip_ms": round(one_step_ms, 1)}))
            print(f"one slider step, key press to new image on screen: {one_step_ms:.0f} ms")
            page.wait_for_timeout(200)
            after = image.screenshot()
            page.screenshot(path=str(shots / "02_vae_elbo_explorer_moved.png"))
            readout = page.locator(".latent-explorer .widget-readout").first.inner_text()
            assert after != before, "the displayed image did not change when the slider moved"
            assert float(readout) > 0, f"the slider's readout is still {readout!r}"
        finally:
            browser.close()
