"""The collection manager: a page of cards on one :class:`AppState`.

Cards, top to bottom (two columns on wide screens, one on a phone): Collections
(``collections_card``), Add videos with the upload receiver (``add_videos``), Failed
ingests (``failed_jobs``) beside Videos in this collection (``videos_card``) and the
Transcript. They share the page's :class:`~.feedback.Notices` (the message line and the
confirmation box) and talk only through the state: picking a collection sets
``state.collection``, a change to the catalog bumps ``state.revision``. More cards (the
hub's Usage, Billing) join with :meth:`CollectionManager.add`. With the vidrag service
(``wb.service``) the Sharing card joins on the right (shown for owners and editors of the
shared collection in focus), and the pending-invites banner sits on top (``invites=False``
leaves it out, for a page that shows it itself).
"""

from __future__ import annotations

import panel as pn

from .add_videos import AddVideosCard
from .card import Card, flex
from .collections_card import CollectionsCard
from .failed_jobs import FailedJobsCard
from .feedback import Notices
from .invites_banner import InvitesBanner
from .layout import Section
from .schedules_card import SchedulesCard
from .sharing_card import SharingCard
from .state import AppState
from .transcript import TranscriptView
from .videos_card import VideosCard


class CollectionManager(pn.viewable.Viewer):
    """Manage collections and their videos. Build with an :class:`AppState`."""

    def __init__(self, state: AppState, *, invites: bool = True, **params) -> None:
        super().__init__(**params)
        self.state = state
        self.wb = state.wb
        self.notices = Notices()
        self.collections = CollectionsCard(state, self.notices)
        self.add_videos = AddVideosCard(state, self.notices)
        self.failed_jobs = FailedJobsCard(state, self.notices)
        self.transcript = TranscriptView(self.wb, state=state)  # corrections follow my role
        self.videos = VideosCard(state, self.notices, transcript=self.transcript)
        self.cards: list[Card] = [self.collections, self.add_videos, self.failed_jobs, self.videos]
        self._left = pn.Column(
            self.collections, self.add_videos, self.failed_jobs, sizing_mode="stretch_width"
        )
        self._right = pn.Column(
            self.videos, Section("Transcript", self.transcript), sizing_mode="stretch_width"
        )
        self.invites = InvitesBanner(state) if invites and self.wb.service is not None else None
        top = [self.invites] if self.invites is not None else []
        self._layout = pn.Column(
            *top, self.notices, flex(self._left, self._right, basis="460px"), sizing_mode="stretch_width"
        )
        self.sharing = self.add(SharingCard, right=True) if self.wb.service is not None else None
        self.schedules = self.add(SchedulesCard, right=True) if self.wb.service is not None else None

    def __panel__(self):
        return self._layout

    def add(self, card_class: type[Card], *, right: bool = False, **kwargs) -> Card:
        """Add a card of ``card_class`` built on this page's state and notices; returns it."""
        card = card_class(self.state, self.notices, **kwargs)
        self.cards.append(card)
        (self._right if right else self._left).append(card)
        return card

    def say(self, message: str, kind: str = "info") -> None:
        """Show a message above the manager (kind: info, success, warning, danger)."""
        self.notices.say(message, kind)

    def refresh(self) -> None:
        """Reload every card from the catalog."""
        for card in self.cards:
            self.notices.guard(card.refresh)
