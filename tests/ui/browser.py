"""Driving Debian's Chromium with Playwright from PyPI (`playwright install` cannot download
here), and the few Streamlit-specific moves the browser tests need."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
ACE_FRAME = 'iframe[title="streamlit_ace.streamlit_ace"]'


def chromium_available() -> bool:
    return Path(CHROMIUM).exists()


def wait_until_idle(page, timeout_s: float = 30) -> None:
    """Wait for Streamlit to finish the rerun in progress (the app marks its script state)."""
    deadline = time.monotonic() + timeout_s
    time.sleep(0.3)  # let the click reach the server and a rerun begin
    app = page.get_by_test_id("stApp")
    while time.monotonic() < deadline:
        if app.get_attribute("data-test-script-state") != "running":
            return
        time.sleep(0.1)
    raise AssertionError("the app stayed busy")


def type_in_ace(page, lines: list[str], frame_index: int = 0) -> None:
    """Replace the Ace editor's text by typing it, line by line, as a user would. Lines are
    typed without leading spaces: Ace indents by itself after a colon."""
    frame = page.frame_locator(ACE_FRAME).nth(frame_index)
    frame.locator(".ace_content").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    for number, line in enumerate(lines):
        page.keyboard.type(line, delay=2)
        page.keyboard.press("Escape")  # close the autocompletion popup, so Enter is a new line
        if number < len(lines) - 1:
            page.keyboard.press("Enter")
    time.sleep(0.8)  # the editor sends its text 200 ms after the last key


def ace_text(page, frame_index: int = 0) -> str:
    return page.frame_locator(ACE_FRAME).nth(frame_index).locator(".ace_content").inner_text()
