"""The state every part of the kernel is handed: settings, catalog and data layout."""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import Catalog
from .layout import Layout
from .settings import Settings


@dataclass
class Context:
    """What a Workbench owns and passes to its parts (nothing global)."""

    settings: Settings
    catalog: Catalog
    layout: Layout

    @property
    def owner(self) -> str:
        return self.settings.user
