"""Where things live under the data root.

Every path is built from ids the catalog generated (UUIDs), never from names a user
typed, so a collection called ``../../etc`` is just a name.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidInput


def _checked(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise InvalidInput(f"{value!r} is not a valid id") from None


@dataclass(frozen=True)
class Layout:
    """The data root: ``collections/<id>/index/`` and ``media/<video id>/``."""

    home: Path

    def index_dir(self, collection_id: str) -> Path:
        return self.home / "collections" / _checked(collection_id) / "index"

    def collection_dir(self, collection_id: str) -> Path:
        return self.home / "collections" / _checked(collection_id)

    def media_dir(self, video_id: str) -> Path:
        return self.home / "media" / _checked(video_id)

    def ensure(self) -> None:
        for sub in ("collections", "media"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
