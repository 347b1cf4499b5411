"""Run the real ``vidrag`` command on a data directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

VIDRAG = shutil.which("vidrag", path=str(Path(sys.executable).parent)) or "vidrag"


def vidrag(home: Path, *args: str, user: str = "tester", env: dict | None = None, stdin: str | None = None):
    """``vidrag ARGS`` with ``VIDRAG_HOME=home``; returns the CompletedProcess."""
    full = {**os.environ, "VIDRAG_HOME": str(home), "VIDRAG_USER": user, **(env or {})}
    return subprocess.run([VIDRAG, *args], capture_output=True, text=True, env=full, timeout=300, input=stdin)
