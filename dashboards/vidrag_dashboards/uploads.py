"""Uploaded files land under the Workbench's home before they are ingested by path."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

UPLOADS_DIR = "uploads"
#: The largest upload the dashboards accept. The browser sends a file as one websocket
#: message, so servers must allow ~4/3 of it: hub_config raises Jupyter's limit for the
#: Voila dashboards, ``panel serve`` needs ``--websocket-max-message-size`` (README).
MAX_UPLOAD_MB = 200


def safe_filename(name: str) -> str:
    """A file name without directories or odd characters, keeping the extension."""
    base = Path(name or "upload").name
    base = re.sub(r"[^A-Za-z0-9._ -]+", "_", base).strip(" .") or "upload"
    return base[-120:]


def save_upload(home: Path, filename: str, data: bytes) -> Path:
    """Write ``data`` to ``<home>/uploads/<random>/<filename>`` and return the path.

    Each upload gets its own folder so two lectures called ``lecture.mp4`` never clash;
    the file stays there because the catalog's video points at it (it is the source a
    retry re-reads, and what the player serves).
    """
    folder = Path(home) / UPLOADS_DIR / uuid.uuid4().hex
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe_filename(filename)
    path.write_bytes(data)
    return path
