"""Driving headless Debian chromium with Playwright: launch options, screenshots, Panel text."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "dashboards"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Shots:
    """Numbered screenshots of a browser session, in ``test-artifacts/dashboards/<name>/``."""

    def __init__(self, page, name: str) -> None:
        self.page, self.dir, self.n = page, ARTIFACTS / name, 0
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()

    def __call__(self, step: str) -> None:
        self.n += 1
        self.page.screenshot(path=str(self.dir / f"{self.n:02d}-{step}.png"), full_page=True)


def panel_text(locator) -> str:
    """The text of a Panel component, whose content lives in a shadow root."""
    return locator.evaluate(
        "el => Array.from((el.shadowRoot || el).children)"
        ".filter(e => !['STYLE', 'LINK'].includes(e.tagName)).map(e => e.textContent).join(' ')"
    )


def clock(text: str) -> float:
    """Seconds from the last ``m:ss`` of a label such as ``1:05``."""
    m, s = text.split(":")[-2:]
    return int(m) * 60 + int(s)
