"""Usage and plans over HTTP: the caller's usage and ledger, and the admin's views.

GET  api/usage               used, reserved and limit per metric, reset time, plan, billing
GET  api/usage/history       the caller's ledger entries and plan changes
GET  api/admin/usage         every account's usage (hub admins)
PUT  api/admin/plans/{name}  put a user on a plan by hand, audited (hub admins)
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from vidrag_kernel.errors import Forbidden, InvalidInput

from . import ledger, plans
from .deps import User


class PlanIn(BaseModel):
    #: a plan's name ("free", "pro", "enterprise:<group>"), or null to undo a hand-set plan
    plan: str | None
    note: str = ""


def _billing(service, user) -> dict:
    billing = getattr(service, "billing", None)
    if billing is None:
        return {"enabled": False}
    return billing.status(user)


def router(service) -> APIRouter:
    """The usage routes of ``service``."""
    api = service.settings.prefix + "api"
    routes = APIRouter(tags=["usage"])
    quotas = service.quotas

    def _admin(user) -> None:
        if not user.admin:
            raise Forbidden("Only hub administrators may see everyone's usage or set plans")

    @routes.get(api + "/usage")
    def my_usage(user: User) -> dict:
        """The caller's plan and usage: per metric used, reserved and limit (minutes in
        minutes, storage in bytes), when messages reset, and the billing status."""
        quotas.sweep(None)
        with quotas.catalog.session() as s:
            view = quotas.view(s, user)
        view["billing"] = _billing(service, user)
        return view

    @routes.get(api + "/usage/history")
    def my_history(user: User, limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict:
        """The caller's ledger (reserve, commit, release, expire), newest first, and their plan changes."""
        with quotas.catalog.session() as s:
            return {
                "events": ledger.history(s, user.name, limit),
                "plan_changes": plans.changes(s, user.name),
            }

    @routes.get(api + "/admin/usage")
    def everyone(user: User) -> list[dict]:
        """Every user the service knows a plan or usage of, with their usage (hub admins)."""
        _admin(user)
        quotas.sweep(None)
        with quotas.catalog.session() as s:
            names = set(s.scalars(select(plans.PlanRow.user)))
            names |= set(s.scalars(select(ledger.Event.user).distinct()))
            names |= {a.removeprefix("user:") for a in ledger.accounts(s) if a.startswith("user:")}
            return [quotas.view(s, name) for name in sorted(names)]

    @routes.put(api + "/admin/plans/{name}")
    def put_plan(caller: User, name: str, body: PlanIn) -> dict:
        """Put a user on a plan by hand (or, with ``plan`` null, undo that), with an
        audit entry naming the admin (hub admins)."""
        _admin(caller)
        if not name.strip() or len(name) > 255:
            raise InvalidInput("A JupyterHub user name is 1 to 255 characters")
        with quotas.catalog.session() as s:
            if body.plan is None:
                plans.set_plan(s, name, quotas.book.default, source="default", actor=caller.name,
                               book=quotas.book, note=body.note)  # fmt: skip
            else:
                plans.set_plan(s, name, body.plan, source="admin", actor=caller.name, book=quotas.book,
                               note=body.note)  # fmt: skip
        with quotas.catalog.session() as s:
            return quotas.view(s, name)

    return routes
