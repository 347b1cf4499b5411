"""The one place every ingest and every answer passes before any work starts.

``check(user, metric, amount)`` is called by the ingest endpoint (metric ``"ingest"``,
amount = the number of sources) and by search and ask (``"search"``, ``"answer"``,
amount 1). Today it allows everything: there are no plans or quotas yet. The quota issue
replaces its body with a reservation in the usage ledger (one conditional
``UPDATE ... WHERE used + reserved + n <= limit``) and raises
``vidrag_kernel.errors.QuotaExceeded`` (HTTP 429) when a limit is reached; the callers
need no change.
"""

from __future__ import annotations

from .auth import HubUser

METRICS = ("ingest", "search", "answer")


def check(user: HubUser, metric: str, amount: int = 1) -> None:
    """Allow ``user`` to spend ``amount`` of ``metric``, or raise ``QuotaExceeded``.

    No limits exist yet, so every request is allowed; an unknown metric is a bug in
    the caller and fails loudly.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown quota metric {metric!r}: one of {', '.join(METRICS)}")
    if amount < 0:
        raise ValueError("a quota amount is never negative")
