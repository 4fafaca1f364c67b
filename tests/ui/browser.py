"""Driving Debian's Chromium with Playwright from PyPI (`playwright install` cannot download
here), and the few Streamlit-specific moves the browser tests need."""

from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
ACE_FRAME = 'iframe[title="streamlit_ace.streamlit_ace"]'


def chromium_available() -> bool:
    return Path(CHROMIUM).exists()


SCRIPT_STATE = "document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state')"


def rerun_started(page, timeout_s: float) -> bool:
    """Wait for Streamlit to begin a rerun (the app marks its script state); False if none began
    within timeout_s (it may also have begun and ended already)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(f"() => {SCRIPT_STATE} === 'running'", timeout=timeout_s * 1000, polling="raf")
        return True
    except PlaywrightTimeout:
        return False


def wait_until_idle(page, timeout_s: float = 30) -> None:
    """Wait for Streamlit to finish the rerun that the last action began, if it began one: a
    short wait for it to begin (the click has to reach the server first), then a long one for
    it to end."""
    rerun_started(page, 0.3)
    page.wait_for_function(f"() => {SCRIPT_STATE} !== 'running'", timeout=timeout_s * 1000)


# Keeps the last value a component sent to the app (its iframe posts it to the page).
RECORD_SENT = """() => {
    if (!window.__tributarySent) {
        window.__tributarySent = {};
        window.addEventListener("message", (event) => {
            const data = event.data;
            if (data && data.type === "streamlit:setComponentValue") window.__tributarySent.last = data.value;
        });
    }
    window.__tributarySent.last = undefined;
}"""


def type_in_ace(page, lines: list[str], frame_index: int = 0) -> None:
    """Replace the Ace editor's text by typing it, line by line, as a user would, and wait
    until the editor has sent the text to the app. Lines are typed without leading spaces: Ace
    indents by itself after a colon."""
    frame = page.frame_locator(ACE_FRAME).nth(frame_index)
    page.evaluate(RECORD_SENT)
    frame.locator(".ace_content").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    for number, line in enumerate(lines):
        page.keyboard.type(line, delay=2)
        page.keyboard.press("Escape")  # close the autocompletion popup, so Enter is a new line
        if number < len(lines) - 1:
            page.keyboard.press("Enter")
    # The editor sends its text 200 ms after the last key (and the app reruns with it).
    text = frame.locator("#ace-editor").evaluate("element => element.env.editor.getValue()")
    page.wait_for_function("text => window.__tributarySent.last === text", arg=text, timeout=10_000)


def ace_text(page, frame_index: int = 0) -> str:
    return page.frame_locator(ACE_FRAME).nth(frame_index).locator(".ace_content").inner_text()
