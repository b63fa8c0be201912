"""A real browser against a real JupyterLab: run the scrubber notebook, move the slider.

Starts JupyterLab on 127.0.0.1 (free port, random token, no network use),
opens the scrubber notebook in Debian's Chromium through Playwright, runs all
cells from the Run menu, waits for the GenerationScrubber, presses
ArrowRight twice on the slider handle and checks that the label says
generation 2 and that the picture changed.

Needs ``/usr/bin/chromium`` (``make browser`` installs it): without it the
test is skipped, except when the environment variable CI is "true", where it
fails. Set ENCCHAIN_SCREENSHOT_DIR to also copy the widget's screenshot there
as ``scrubber.png`` (that is how ``docs/scrubber.png`` is made).
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
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
#: The notebook the test runs (with the rest of its folder, copied to a temp dir):
#: it must display a GenerationScrubber. ENCCHAIN_BROWSER_NOTEBOOK overrides it;
#: when the file does not exist, the test writes and runs FALLBACK_CELLS instead
#: (e.g. ENCCHAIN_BROWSER_NOTEBOOK=none for the quick built-in notebook).
NOTEBOOK = Path(os.environ.get("ENCCHAIN_BROWSER_NOTEBOOK") or REPO / "notebooks" / "02_run_chain.ipynb")
#: A minimal scrubber notebook: a tiny chain trained into $ENCCHAIN_RUNS, then the widget.
FALLBACK_CELLS = [
    "import os\nfrom pathlib import Path\n\n"
    "from encchain.chain import run_chain\nfrom encchain.presets import preset\n"
    "from encchain.widgets import GenerationScrubber\n\n"
    'RUNS = Path(os.environ.get("ENCCHAIN_RUNS", "runs"))\n'
    'QUICK = os.environ.get("ENCCHAIN_QUICK") == "1"',
    'config = preset("fc1", quick=True, n_samples=1000 if QUICK else 2000, generations=3, epochs=2)\n'
    'run = run_chain(config, RUNS / "scrubber-demo", progress=False)\nrun',
    "scrubber = GenerationScrubber(run)\nscrubber",
]

SERVER_START_TIMEOUT = 60  # s until /api/status answers
CELLS_TIMEOUT = 300  # s until the widget's slider shows (training included)
STEP_TIMEOUT = 30  # s until the label says generation 2
KERNEL_TIMEOUT = 60  # s until the notebook's kernel is idle

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]

# JupyterLab settings that keep it off the network and free of pop-ups.
USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        msg = "Chromium not found (Debian: apt-get install chromium, or `make browser`)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{msg}; the browser test must run in CI")
        pytest.skip(msg)
    return path


def _write_fallback_notebook(path: Path) -> None:
    nb = {
        "cells": [
            {"cell_type": "code", "execution_count": None, "id": f"cell{i}", "metadata": {}, "outputs": [],
             "source": src}
            for i, src in enumerate(FALLBACK_CELLS)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1))


class Lab:
    """A JupyterLab server process (see the ``lab`` fixture)."""

    def __init__(self, root: Path, runs: Path, home: Path, log: Path) -> None:
        self.root, self.log_path = root, log
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        settings = home / "user-settings"
        for rel, content in USER_SETTINGS.items():
            f = settings / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(content))
        env = dict(os.environ)
        env.update(
            # The test's own scale: a quick chain in a scratch folder. For the README
            # screenshot, ENCCHAIN_BROWSER_QUICK=0 ENCCHAIN_BROWSER_RUNS=<repo>/data/runs
            # reuse the notebook-scale runs already on disk instead.
            ENCCHAIN_QUICK=os.environ.get("ENCCHAIN_BROWSER_QUICK", "1"),
            ENCCHAIN_RUNS=os.environ.get("ENCCHAIN_BROWSER_RUNS", str(runs)),
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_DATA_DIR=str(home / "data"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            IPYTHONDIR=str(home / "ipython"),
            MPLBACKEND="Agg",
            PYTHONUNBUFFERED="1",
        )
        env.pop("JUPYTER_TOKEN", None)
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={home / 'workspaces'}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            "--ServerApp.terminals_enabled=False",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # containers and CI often run as root
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def api(self, path: str, method: str = "GET") -> bytes:
        req = urllib.request.Request(f"{self.base}{path}?token={self.token}", method=method, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.proc.returncode}\n{self.log_tail()}")
            try:
                json.loads(self.api("/api/status"))
                return
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.5)
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s\n{self.log_tail()}")

    def wait_kernel_connected(self, timeout: float) -> bool:
        """Wait until a kernel is idle and the browser's websocket is connected to it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                kernels = json.loads(self.api("/api/kernels"))
            except (urllib.error.URLError, OSError, ValueError):
                kernels = []
            if any(k.get("execution_state") == "idle" and k.get("connections", 0) >= 1 for k in kernels):
                return True
            time.sleep(0.5)
        return False

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "---- JupyterLab log (tail) ----\n" + "\n".join(lines[-n:])

    def stop(self) -> None:
        """Shut down kernels and server: politely first, then by signal."""
        if self.proc.poll() is None:
            try:
                self.api("/api/shutdown", method="POST")
            except (urllib.error.URLError, OSError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass
        self._log.close()


@pytest.fixture
def chromium():
    """Path of the Chromium binary (checked before any server starts)."""
    path = _chromium()
    pytest.importorskip("playwright.sync_api")
    return path


@pytest.fixture
def lab(chromium, tmp_path):
    """A JupyterLab serving a temp copy of the notebooks; always stopped at the end."""
    root = tmp_path / "notebooks"
    if NOTEBOOK.exists():
        shutil.copytree(NOTEBOOK.parent, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        notebook = root / NOTEBOOK.name
    else:
        root.mkdir()
        notebook = root / "scrubber.ipynb"
        _write_fallback_notebook(notebook)
    server = Lab(root, tmp_path / "runs", tmp_path / "jupyter-home", tmp_path / "jupyterlab.log")
    try:
        server.wait_ready(SERVER_START_TIMEOUT)
        server.notebook = notebook.relative_to(root).as_posix()
        yield server
    finally:
        server.stop()


def _dismiss_dialogs(page, log: list[str]) -> None:
    """Accept any JupyterLab dialog (e.g. kernel selection) and close toasts."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and dialog.first.is_visible():
        log.append("dialog: " + " ".join(dialog.first.inner_text().split())[:200])
        accept = dialog.first.locator(".jp-Dialog-button.jp-mod-accept")
        if accept.count():
            accept.first.click()
        else:
            page.keyboard.press("Escape")
    toasts = page.locator(".Toastify__toast .Toastify__close-button, .jp-toast-button:has-text('No')")
    for i in range(toasts.count()):
        try:
            toasts.nth(i).click(timeout=1000)
        except Exception:
            pass


def _wait_kernel_idle(page, timeout: float) -> bool:
    """Wait until the notebook's kernel reports idle (toolbar indicator or status bar)."""
    deadline = time.monotonic() + timeout
    indicator = page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
    status_bar = page.locator(".jp-StatusBar-Widget", has_text="Idle")
    while time.monotonic() < deadline:
        if indicator.count() or status_bar.count():
            return True
        page.wait_for_timeout(250)
    return False


def _cells_started(page, timeout: float) -> bool:
    """True once some cell's prompt shows [*] or an execution count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        prompts = page.locator(".jp-NotebookPanel .jp-InputArea-prompt").all_inner_texts()
        if any(("*" in t) or any(c.isdigit() for c in t) for t in prompts):
            return True
        page.wait_for_timeout(250)
    return False


def _cells_done(page) -> bool:
    """True when no cell is queued or running (no [*] prompt)."""
    prompts = page.locator(".jp-NotebookPanel .jp-InputArea-prompt").all_inner_texts()
    return not any("*" in t for t in prompts)


def _errors(page) -> str:
    """Text of any traceback shown in the notebook."""
    out = []
    stderr = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    for i in range(stderr.count()):
        text = stderr.nth(i).inner_text()
        if "Traceback" in text or "Error" in text.split("\n", 1)[0]:
            out.append(text)
    return "\n".join(out)


def test_scrubber_in_jupyterlab(chromium, lab, tmp_path):
    from playwright import sync_api

    started = time.monotonic()
    shot = tmp_path / "page.png"
    widget_shot = tmp_path / "scrubber.png"
    notes: list[str] = []

    def fail(msg: str, page) -> None:
        try:
            page.screenshot(path=str(shot), full_page=False)
        except Exception as exc:  # pragma: no cover - diagnostics only
            notes.append(f"(screenshot failed: {exc})")
        pytest.fail(
            f"{msg}\npage screenshot: {shot}\nnotes: {notes}\n{lab.log_tail()}", pytrace=False
        )

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            page.on("pageerror", lambda e: notes.append(f"page error: {e}"))
            page.goto(f"{lab.base}/lab/tree/{lab.notebook}?token={lab.token}", wait_until="domcontentloaded")
            try:
                page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(state="visible", timeout=60_000)
            except sync_api.TimeoutError:
                fail("the notebook did not open within 60 s", page)
            _dismiss_dialogs(page, notes)
            page.locator(".jp-NotebookPanel .jp-Cell").first.click()  # make it the current widget

            # Cells run before the kernel is connected are silently not run: wait for it.
            if not (lab.wait_kernel_connected(KERNEL_TIMEOUT) and _wait_kernel_idle(page, KERNEL_TIMEOUT)):
                fail(f"the kernel was not idle within {KERNEL_TIMEOUT} s", page)
            for attempt in range(2):
                # Run > Run All Cells, from the menu bar.
                page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
                page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
                if _cells_started(page, 20):
                    break
                notes.append("Run All Cells started no cell; trying again")
                _dismiss_dialogs(page, notes)
            else:
                fail("Run > Run All Cells did not start the cells", page)

            slider = page.locator(".encchain-scrubber .widget-slider .noUi-handle").last
            deadline = time.monotonic() + CELLS_TIMEOUT
            while True:
                if slider.count() and slider.is_visible():
                    break
                errors = _errors(page)
                if errors:
                    fail(f"a cell raised:\n{errors[-3000:]}", page)
                if time.monotonic() > deadline:
                    fail(f"no scrubber slider after {CELLS_TIMEOUT} s of running the notebook", page)
                _dismiss_dialogs(page, notes)
                page.wait_for_timeout(1000)
            # Widget messages wait while later cells run: let the notebook finish first.
            while not _cells_done(page):
                errors = _errors(page)
                if errors:
                    fail(f"a cell raised:\n{errors[-3000:]}", page)
                if time.monotonic() > deadline:
                    fail(f"the notebook was still running after {CELLS_TIMEOUT} s", page)
                page.wait_for_timeout(500)
            ran = time.monotonic() - started

            scrubber = page.locator(".encchain-scrubber").last
            label = scrubber.locator(".encchain-scrubber-label")
            img = scrubber.locator("img").first
            img.wait_for(state="visible", timeout=10_000)
            assert "generation 0" in label.inner_text()
            src_before = img.get_attribute("src")

            slider.scroll_into_view_if_needed()
            slider.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(200)
            page.keyboard.press("ArrowRight")
            try:
                page.wait_for_function(
                    "el => el.innerText.includes('generation 2')", arg=label.element_handle(), timeout=STEP_TIMEOUT * 1000
                )
            except sync_api.TimeoutError:
                fail(f"label did not reach generation 2: {label.inner_text()!r}", page)
            try:
                page.wait_for_function(
                    "([el, old]) => el.getAttribute('src') !== old && el.complete && el.naturalWidth > 0",
                    arg=[img.element_handle(), src_before],
                    timeout=STEP_TIMEOUT * 1000,
                )
            except sync_api.TimeoutError:
                fail("the scrubber's image did not change", page)
            text = label.inner_text()
            assert "generation 2" in text and "original data" not in text
            assert page.locator(".encchain-scrubber .widget-readout").last.inner_text().strip() == "2"

            page.wait_for_timeout(300)
            page.screenshot(path=str(shot), full_page=False)
            # the widget only: scrolled to the top of the notebook so that JupyterLab's
            # status bar does not cover its bottom, cut at the picture's right edge
            scrubber.evaluate("e => e.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(300)
            box, pic = scrubber.bounding_box(), img.bounding_box()
            right = max(pic["x"] + pic["width"], box["x"] + 600)
            page.screenshot(
                path=str(widget_shot),
                clip={"x": box["x"], "y": box["y"], "width": min(right - box["x"] + 6, box["width"]), "height": box["height"]},
            )
        finally:
            browser.close()

    out_dir = os.environ.get("ENCCHAIN_SCREENSHOT_DIR")
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(widget_shot, Path(out_dir) / "scrubber.png")
    print(
        f"\nbrowser test: notebook ran and widget showed after {ran:.0f} s; total {time.monotonic() - started:.0f} s; "
        f"screenshots {shot}, {widget_shot}; notes: {notes}"
    )
