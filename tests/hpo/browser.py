"""Headless Chromium driven by Selenium, for the tests (and the README's screenshots) that look
at MLflow's and optuna-dashboard's pages as a user does.

Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver) and the
selenium package are needed; `browser_or_skip()` says which is missing. Selenium is pointed at
the system chromedriver, so its Selenium Manager never downloads a browser.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def missing() -> str | None:
    """Why no browser can be driven here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    if not any(shutil.which(name) for name in CHROMIUM):
        return "no chromium here (Debian: apt-get install chromium chromium-driver)"
    if not shutil.which("chromedriver"):
        return "no chromedriver here (Debian: apt-get install chromium-driver)"
    return None


def browser_or_skip(width: int = 1400, height: int = 900) -> Any:
    """A headless Chromium WebDriver (quit() it), or the test skips saying what is missing."""
    why = missing()
    if why:
        pytest.skip(why)
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = next(shutil.which(n) for n in CHROMIUM if shutil.which(n))
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    return webdriver.Chrome(options=options, service=service)


def wait_for_text(driver: Any, texts: list[str], timeout: float = 90.0) -> str:
    """The page's visible text once it holds every one of `texts` (an AssertionError naming
    the missing ones after `timeout` seconds)."""
    return wait_until(driver, lambda body: all(t in body for t in texts), texts, timeout)


def wait_until(driver: Any, ready: Callable[[str], bool], what: Any, timeout: float = 90.0) -> str:
    from selenium.webdriver.common.by import By

    deadline, body = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            body = driver.find_element(By.TAG_NAME, "body").text
        except Exception:  # noqa: BLE001 (the page is still being replaced)
            body = ""
        if ready(body):
            return body
        time.sleep(0.5)
    raise AssertionError(f"the page never showed {what!r} in {timeout} s; it shows:\n{body[:3000]}")


def save_screenshot(driver: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path


def start_optuna_dashboard(storage: str, port: int) -> Any:
    """`optuna-dashboard STORAGE` on 127.0.0.1:port, answering (the Popen: terminate() it), or
    the test skips when optuna-dashboard is not installed."""
    import subprocess
    import sys
    import urllib.request

    script = shutil.which("optuna-dashboard") or shutil.which(
        "optuna-dashboard", path=str(Path(sys.executable).parent)
    )
    if script is None:
        pytest.skip("optuna-dashboard is not installed (pip install optuna-dashboard)")
    process = subprocess.Popen(
        [script, storage, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5):
                return process
        except OSError:
            if process.poll() is not None:
                raise AssertionError(f"optuna-dashboard exited with {process.returncode}") from None
            time.sleep(0.5)
    process.terminate()
    raise AssertionError("optuna-dashboard did not answer in 60 s")


def stop(process: Any) -> None:
    """End a server started here: SIGTERM, then SIGKILL after 10 s (optuna-dashboard's
    wsgiref server does not stop on SIGTERM while it serves)."""
    import subprocess

    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
