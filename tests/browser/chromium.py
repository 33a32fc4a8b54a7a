"""Headless Chromium through Selenium and the Debian chromedriver; never downloads a browser."""

from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
DRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
# Flags for a quiet, offline, sandbox-free run in CI containers.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
    "--force-device-scale-factor=1",
)


def _first_existing(candidates: tuple[str, ...], name: str) -> str | None:
    for path in candidates:
        if Path(path).is_file():
            return path
    return shutil.which(name)


def find_chromium() -> tuple[str, str] | str:
    """(browser, chromedriver) paths, or why they cannot be found. Selenium itself is a test
    dependency: when it is missing the test fails rather than skips."""
    browser = _first_existing(CHROMIUM_CANDIDATES, "chromium")
    driver = _first_existing(DRIVER_CANDIDATES, "chromedriver")
    missing = [
        name for name, path in (("chromium", browser), ("chromedriver", driver)) if path is None
    ]
    if missing:
        return f"{' and '.join(missing)} not found (install: apt-get install -y chromium chromium-driver)"
    return browser, driver


def headless_chromium(browser: str, driver: str, user_data_dir: Path):
    """A Selenium WebDriver for a fresh headless Chromium profile in ``user_data_dir``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    # With both paths given, Selenium Manager (which may try to download) is not consulted.
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))
