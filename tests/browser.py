"""Headless Debian Chromium driven by Selenium, for the tests that check pages in a real browser."""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    """A Chromium window of ``width`` × ``height`` CSS pixels with a fresh profile (removed after).
    Fails the test when Debian's chromium and chromium-driver are not installed."""
    chromium_path, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium_path and chromedriver, "install Debian's chromium and chromium-driver (scripts/setup.sh --dev does)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path
    profile = tempfile.mkdtemp(prefix="closer-chromium-")
    for flag in (*FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
