"""vidrag's engine: ingest lecture videos and ask them questions, with citations to the second.

Importing this package is cheap: heavy libraries (torch, faster-whisper, FAISS, yt-dlp)
load only when a stage needs them.
"""

from __future__ import annotations

from .errors import VidragError
from .settings import Settings

__version__ = "0.1.0"
__all__ = [
    "Settings",
    "VidragError",
    "Workbench",
    "__version__",
    "deep_link",
    "format_time",
    "tqdm_progress",
    "youtube_id",
]


def __getattr__(name: str):
    # the Workbench pulls in SQLAlchemy; keep `import vidrag_kernel` light for the hub side
    if name == "Workbench":
        from .workbench import Workbench

        return Workbench
    if name in ("deep_link", "format_time", "youtube_id"):
        # the public display helpers (the dashboards and notebooks use these, not the modules)
        from . import links

        return getattr(links, name)
    if name == "tqdm_progress":
        from .progress import tqdm_progress

        return tqdm_progress
    raise AttributeError(name)
