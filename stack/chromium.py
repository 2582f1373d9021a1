"""Headless Chromium for the dashboard's browser tests and its first-paint benchmark: Debian's chromium and
chromium-driver (installed by `make setup`), kept from reaching anything beyond loopback."""

from __future__ import annotations

from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# These machines have no network beyond loopback: keep Chromium from trying to reach Google's services.
OFFLINE_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,2000",
)


def headless_chromium(profile: Path) -> webdriver.Chrome:
    """A Chromium of its own (`profile`: its user-data folder), 1400x2000 pixels, driven by WebDriver."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (*OFFLINE_ARGUMENTS, f"--user-data-dir={profile}"):
        options.add_argument(argument)
    return webdriver.Chrome(service=ChromeService(str(CHROMEDRIVER)), options=options)
