"""One error tree for vidrag.

Every error a user can cause or meet carries a user-facing ``message`` and an HTTP-like
``status``. The CLI, the hub service and the dashboards turn these into one clear line
or response at their edge; nobody should see a traceback for bad input.
"""

from __future__ import annotations


class VidragError(Exception):
    """Base class: a user-facing message and an HTTP-like status."""

    status: int = 500
    kind: str = "error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def to_dict(self) -> dict:
        """A JSON-friendly view for the CLI's ``--json`` and for services."""
        return {"error": self.kind, "status": self.status, "message": self.message}


class InvalidInput(VidragError):
    """The caller asked for something malformed or unsupported."""

    status = 400
    kind = "invalid_input"


class Forbidden(VidragError):
    """The caller may not do this (a refused host, a missing role)."""

    status = 403
    kind = "forbidden"


class NotFound(VidragError):
    """A collection, video, conversation or file does not exist."""

    status = 404
    kind = "not_found"


class Conflict(VidragError):
    """The request clashes with current state (a name already taken, a busy writer)."""

    status = 409
    kind = "conflict"


class TooLarge(InvalidInput):
    """A video is longer or bigger than the configured limits."""

    status = 413
    kind = "too_large"


class QuotaExceeded(VidragError):
    """A plan or quota limit was reached.

    The service fills in the figures (``metric``, ``limit``, ``used``, ``reserved``,
    ``resets_at`` as ISO text or None, ``upgrade`` as a URL or None); they travel in
    ``to_dict()`` so a client can show the same sentence and an Upgrade action.
    """

    status = 429
    kind = "quota_exceeded"
    FIELDS = ("metric", "limit", "used", "reserved", "resets_at", "upgrade")

    def __init__(self, message: str, *, status: int | None = None, **figures) -> None:
        super().__init__(message, status=status)
        unknown = set(figures) - set(self.FIELDS)
        if unknown:
            raise TypeError(f"QuotaExceeded has no field {', '.join(sorted(unknown))}")
        self.metric = figures.get("metric")
        self.limit = figures.get("limit")
        self.used = figures.get("used")
        self.reserved = figures.get("reserved")
        self.resets_at = figures.get("resets_at")
        self.upgrade = figures.get("upgrade")

    def to_dict(self) -> dict:
        return {**super().to_dict(), **{name: getattr(self, name) for name in self.FIELDS}}


class FetchFailed(VidragError):
    """The upstream site or file could not be fetched or read."""

    status = 502
    kind = "fetch_failed"


class ModelError(VidragError):
    """A speech, embedding or language model failed or is missing."""

    status = 503
    kind = "model_error"


class MissingDependency(VidragError):
    """An optional engine needs an extra that is not installed."""

    status = 501
    kind = "missing_dependency"

    @classmethod
    def for_extra(cls, what: str, extra: str, module: str) -> MissingDependency:
        """The standard message naming the exact pip command."""
        return cls(
            f"{what} needs the optional package '{module}', which is not installed. "
            f"Install it with: pip install 'vidrag[{extra}]'"
        )
