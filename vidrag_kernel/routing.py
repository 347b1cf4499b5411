"""The Workbench's view over several libraries: each call goes to the library that holds
what it names, and lists join every library's entries.

A name or id is looked up in the libraries in order (the local library first), so a
personal collection shadows a shared one of the same name; ids are UUIDs and never
clash. New collections go to the first library unless ``library=`` names another.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .errors import FetchFailed, InvalidInput, NotFound

log = logging.getLogger("vidrag.routing")


class Libraries:
    """An ordered set of libraries and the rules that pick one."""

    def __init__(self, libraries: Sequence) -> None:
        if not libraries:
            raise InvalidInput("a Workbench needs at least one library")
        names = [lib.name for lib in libraries]
        if len(set(names)) != len(names):
            raise InvalidInput(f"library names must differ, got {names}")
        self.all = list(libraries)
        self.default = self.all[0]

    def named(self, name: str | None):
        """The library called ``name`` (None = the default one)."""
        if name is None:
            return self.default
        for lib in self.all:
            if lib.name == name:
                return lib
        raise NotFound(f"No library called {name!r}; there are {', '.join(lib.name for lib in self.all)}")

    def _first(self, question: str, ref: str, what: str):
        for lib in self.all:
            if getattr(lib, question)(ref):
                return lib
        raise NotFound(f"No {what} {ref!r}")

    def for_collection(self, ref: str | Sequence[str] | None):
        """The library holding collection ``ref`` (None = the default library's default collection).

        Several refs must all live in one library: a search cannot span two of them.
        """
        if ref is None:
            return self.default
        if not isinstance(ref, str):
            libs = {id(lib): lib for lib in (self.for_collection(r) for r in ref)}
            if len(libs) > 1:
                raise InvalidInput("These collections live in different places: search them one at a time")
            return next(iter(libs.values()), self.default)
        if len(self.all) == 1:
            return self.default  # its own lookup gives the precise error
        for lib in self.all:
            if lib.holds_collection(ref):
                return lib
        return self.default

    def for_video(self, video_id: str):
        return self.default if len(self.all) == 1 else self._first("holds_video", video_id, "video with id")

    def for_conversation(self, conversation_id: str):
        if len(self.all) == 1:
            return self.default
        return self._first("holds_conversation", conversation_id, "conversation with id")

    def for_job(self, job_id: str):
        return self.default if len(self.all) == 1 else self._first("holds_job", job_id, "ingest job")

    def for_scope(
        self, collection=None, videos: Sequence[str] | None = None, conversation: str | None = None
    ):
        """The library an ask or search goes to: by conversation, then collection, then videos."""
        if conversation is not None:
            return self.for_conversation(conversation)
        if collection is not None:
            return self.for_collection(collection)
        if videos:
            return self.for_video(videos[0])
        return self.default


def _tag(info, library) -> object:
    info.library = library.name
    return info


class CollectionsView:
    """``wb.collections``: the collections of every library."""

    def __init__(self, libraries: Libraries) -> None:
        self._libs = libraries

    def create(self, name: str, description: str = "", *, library: str | None = None, **meta):
        """Create a collection (in the default library unless ``library`` names another)."""
        lib = self._libs.named(library)
        return _tag(lib.collections.create(name, description, **meta), lib)

    def get_or_create(self, name: str, description: str = "", *, library: str | None = None, **meta):
        """The collection called ``name`` wherever it lives, else a new one."""
        try:
            return self.get(name)
        except NotFound:
            return self.create(name, description, library=library, **meta)

    def get(self, ref: str | None = None):
        """One collection by name or id (None = the default "Uncategorized")."""
        lib = self._libs.for_collection(ref)
        return _tag(lib.collections.get(ref), lib)

    def list(self, search: str | None = None) -> list:
        """Every collection the user may see: their own, then those shared with them.

        A library that cannot be reached (the service is down) is left out with a
        warning, so personal collections stay usable."""
        out = []
        for lib in self._libs.all:
            try:
                infos = lib.collections.list(search)
            except FetchFailed as exc:
                if lib is self._libs.default:
                    raise
                log.warning("%s collections are not listed: %s", lib.name, exc.message)
                continue
            out.extend(_tag(info, lib) for info in infos)
        return out

    def update(self, ref: str, **changes):
        """Rename, or change description and metadata."""
        lib = self._libs.for_collection(ref)
        return _tag(lib.collections.update(ref, **changes), lib)

    def delete(self, ref: str, *, delete_videos: bool = True) -> list[str]:
        """Delete a collection and its index (see ``Collections.delete``)."""
        return self._libs.for_collection(ref).collections.delete(ref, delete_videos=delete_videos)


class VideosView:
    """``wb.videos``: the videos in every library's collections."""

    def __init__(self, libraries: Libraries) -> None:
        self._libs = libraries

    def list(self, collection: str | None = None, *, tags=None, search: str | None = None) -> list:
        """Videos of one collection, or of all the user's collections everywhere."""
        libs = [self._libs.for_collection(collection)] if collection is not None else self._libs.all
        return [v for lib in libs for v in lib.videos.list(collection, tags=tags, search=search)]

    def get(self, video_id: str):
        return self._libs.for_video(video_id).videos.get(video_id)

    def delete(self, video_ids: str | list[str]) -> int:
        """Delete videos with their chunks, vectors and files."""
        ids = [video_ids] if isinstance(video_ids, str) else list(video_ids)
        return sum(self._libs.for_video(v).videos.delete([v]) for v in ids)

    def set_tags(self, video_id: str, tags: list[str]):
        return self._libs.for_video(video_id).videos.set_tags(video_id, tags)

    def add_to(self, collection: str, video_ids: str | list[str]) -> int:
        """Add videos to another collection of the same library."""
        return self._libs.for_collection(collection).videos.add_to(collection, video_ids)

    def remove_from(self, collection: str, video_ids: str | list[str]) -> int:
        return self._libs.for_collection(collection).videos.remove_from(collection, video_ids)

    def move(self, video_ids: str | list[str], source: str, target: str) -> int:
        lib = self._libs.for_collection(source)
        if self._libs.for_collection(target) is not lib:
            raise InvalidInput(
                "Videos move between collections of one place only; ingest the video there instead"
            )
        return lib.videos.move(video_ids, source, target)

    def segments(self, video_id: str) -> list:
        return self._libs.for_video(video_id).videos.segments(video_id)

    def correct(self, video_id: str, line: int | float, text: str):
        """Correct one transcript line (its position, or its start time in seconds)."""
        return self._libs.for_video(video_id).videos.correct(video_id, line, text)

    def corrections(self, video_id: str) -> list:
        return self._libs.for_video(video_id).videos.corrections(video_id)

    def media_path(self, video_id: str):
        return self._libs.for_video(video_id).videos.media_path(video_id)

    def media_url(self, video_id: str) -> str | None:
        """The URL a browser plays a video of a shared collection from (None for local ones,
        which play from ``media_path``)."""
        videos = self._libs.for_video(video_id).videos
        return videos.media_url(video_id) if hasattr(videos, "media_url") else None

    def transcript(self, video_id: str, fmt: str = "txt") -> str:
        return self._libs.for_video(video_id).videos.transcript(video_id, fmt)


class JobsView:
    """``wb.jobs``: ingest jobs in every library."""

    def __init__(self, libraries: Libraries) -> None:
        self._libs = libraries

    def list(self, collection: str | None = None, *, state: str | None = None, limit: int = 100) -> list:
        libs = [self._libs.for_collection(collection)] if collection is not None else self._libs.all
        jobs = [j for lib in libs for j in lib.jobs.list(collection, state=state, limit=limit)]
        return sorted(jobs, key=lambda j: j.created_at or 0, reverse=True)[:limit] if len(libs) > 1 else jobs

    def get(self, job_id: str):
        return self._libs.for_job(job_id).jobs.get(job_id)

    def retry(self, job_id: str, progress=None):
        return self._libs.for_job(job_id).jobs.retry(job_id, progress)

    def recover(self) -> int:
        return sum(lib.jobs.recover() for lib in self._libs.all)


class ConversationsView:
    """``wb.conversations``: the user's conversations in every library."""

    def __init__(self, libraries: Libraries) -> None:
        self._libs = libraries

    def list(self, collection: str | None = None) -> list:
        libs = [self._libs.for_collection(collection)] if collection is not None else self._libs.all
        return [c for lib in libs for c in lib.conversations.list(collection)]

    def get(self, conversation_id: str):
        return self._libs.for_conversation(conversation_id).conversations.get(conversation_id)

    def create(
        self, collection: str | None = None, videos: Sequence[str] | None = None, title: str | None = None
    ):
        lib = self._libs.for_scope(collection, videos)
        return lib.conversations.create(collection, videos, title)

    def rename(self, conversation_id: str, title: str):
        return self._libs.for_conversation(conversation_id).conversations.rename(conversation_id, title)

    def delete(self, conversation_id: str) -> None:
        return self._libs.for_conversation(conversation_id).conversations.delete(conversation_id)

    def export(self, conversation_id: str, fmt: str = "markdown") -> str:
        return self._libs.for_conversation(conversation_id).conversations.export(conversation_id, fmt)

    def history(self, conversation_id: str, limit: int) -> list[dict]:
        return self._libs.for_conversation(conversation_id).conversations.history(conversation_id, limit)

    def add_turn(self, conversation_id: str, question: str, answer) -> str:
        return self._libs.for_conversation(conversation_id).conversations.add_turn(
            conversation_id, question, answer
        )
