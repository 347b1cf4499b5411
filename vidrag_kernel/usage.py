"""Plans, usage and billing of the vidrag service, from a kernel: ``wb.service.usage``.

The service counts what shared work costs (videos, minutes of video, chat messages a
month, storage) against each user's plan; this is its client::

    wb.service.usage()            # plan, used / reserved / limit per metric, reset time, billing
    wb.service.usage.history()    # the caller's ledger entries and plan changes
    wb.service.usage.everyone()   # every user's usage (hub admins)
    wb.service.usage.checkout()   # {"url": ...}: Stripe's checkout page for an upgrade
    wb.service.usage.portal()     # {"url": ...}: Stripe's page to manage the subscription

With billing off, ``usage()["billing"]`` is ``{"enabled": False}`` and checkout and
portal raise the service's refusal (``Conflict``).
"""

from __future__ import annotations

from typing import Any


class Usage:
    """The service's usage and billing endpoints; calling it returns ``GET api/usage``."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __call__(self) -> dict:
        """The caller's plan, usage per metric, reset time and billing status."""
        return self._client.call("GET", "usage")

    def history(self, limit: int = 200) -> dict:
        """The caller's ledger (newest first) and plan changes."""
        return self._client.call("GET", "usage/history", params={"limit": limit})

    def everyone(self) -> list[dict]:
        """Every user's usage, as ``usage()`` shows one (hub admins; Forbidden otherwise)."""
        return self._client.call("GET", "admin/usage")

    def checkout(self, plan: str | None = None, return_url: str | None = None) -> dict:
        """Start an upgrade: ``{"url": ...}`` of the payment page (the plan changes when
        the payment is confirmed to the service, not when this returns)."""
        body = {k: v for k, v in {"plan": plan, "return_url": return_url}.items() if v}
        return self._client.call("POST", "billing/checkout", json=body)

    def portal(self, return_url: str | None = None) -> dict:
        """``{"url": ...}`` of the page where the caller manages their subscription."""
        body = {"return_url": return_url} if return_url else {}
        return self._client.call("POST", "billing/portal", json=body)
