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
    """A plan or quota limit was reached."""

    status = 429
    kind = "quota_exceeded"


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
