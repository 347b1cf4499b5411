"""The state every part of the kernel is handed: settings, catalog and data layout."""

from __future__ import annotations

from dataclasses import dataclass, field

from .access import Access
from .catalog import Catalog
from .layout import Layout
from .settings import Settings


@dataclass
class Context:
    """What a Workbench owns and passes to its parts (nothing global)."""

    settings: Settings
    catalog: Catalog
    layout: Layout
    #: who may see and change which collections; the personal-mode policy by default
    access: Access = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.access is None:
            self.access = Access(self.settings.user)

    @property
    def owner(self) -> str:
        """The user this context acts for (collections they create are theirs)."""
        return self.access.user
