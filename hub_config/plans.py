"""The vidrag service's plans, configured with the hub: ``c.VidragPlans`` traitlets.

``jupyterhub_config.py`` builds a :class:`VidragPlans` and hands it to the service as one
JSON variable, ``VIDRAG_PLANS`` (read by ``vidrag_hub.settings.ServiceSettings``). Each
option is taken from ``c.VidragPlans.<name>`` in a config file, else from its environment
variable (JSON for the dictionaries), else from its default. ``python -m hub_config.plans``
prints every option with its help.

Limits are in people's units: videos, minutes of video, chat messages a month, storage in
GB; ``null`` means no limit. Plan changes never delete or hide anything stored: over a
limit, only new work is refused.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping

from traitlets import Dict, Unicode, validate
from traitlets.config import Configurable

# one table of defaults (the issue's), kept where the service reads its plans
from vidrag_hub.plans import DEFAULT_PLANS

LIMITS = {"title", "price", "videos", "minutes", "messages", "storage_gb"}


def _check_limits(where: str, spec: Mapping) -> None:
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where} must be a mapping of limits, not {spec!r}")
    unknown = set(spec) - LIMITS
    if unknown:
        raise ValueError(
            f"{where} has unknown settings {', '.join(sorted(unknown))} (known: {', '.join(sorted(LIMITS))})"
        )
    for name in ("videos", "minutes", "messages", "storage_gb"):
        value = spec.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise ValueError(f"{where}.{name} must be a number >= 0 or null (no limit), not {value!r}")


class VidragPlans(Configurable):
    """Plans of the vidrag service: limits per plan, the default plan, organisations."""

    plans = Dict(
        config=True,
        help="""VIDRAG_PLAN_LIMITS (JSON): the self-service plans and their limits, by name:
        `{"free": {"videos": 2, "minutes": 60, "messages": 50, "storage_gb": 1}, "pro": {...}}`
        (also `title` and `price` for display; a limit of null means none). A plan named here
        replaces the built-in one of that name: Free (2 videos, 60 minutes, 50 messages a
        month, 1 GB) and Pro ($29 a month: 200 videos, 6,000 minutes, 5,000 messages, 50 GB).
        Videos, minutes and storage count against the owner of the shared collection a video
        goes into; messages against the user who asks.""",
    ).tag(env="VIDRAG_PLAN_LIMITS")

    default_plan = Unicode(
        "free",
        config=True,
        help="""VIDRAG_DEFAULT_PLAN: the plan of everyone without a subscription, a hand-set
        plan or an organisation (and of everyone while billing is off).""",
    ).tag(env="VIDRAG_DEFAULT_PLAN")

    enterprise = Dict(
        config=True,
        help="""VIDRAG_ENTERPRISE_PLANS (JSON): Enterprise limits per organisation, which is a
        JupyterHub group: `{"acme": {"videos": 5000, "minutes": 200000, "messages": null,
        "storage_gb": 2000}}`. Members of the group share one pool, whoever pays; membership
        wins over a personal subscription, a plan set by hand by an admin wins over both.""",
    ).tag(env="VIDRAG_ENTERPRISE_PLANS")

    upgrade_url = Unicode(
        "",
        config=True,
        help="""VIDRAG_UPGRADE_URL: where a user over a limit is sent to upgrade (a pricing
        page). Empty: the service's own Stripe checkout when billing is on, else no upgrade
        path (the refusal says to ask the administrator).""",
    ).tag(env="VIDRAG_UPGRADE_URL")

    def __init__(self, environ: Mapping[str, str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        env = os.environ if environ is None else environ
        configured = set(self.config.get(type(self).__name__, {}))
        for name, trait in self.traits(env=lambda v: v is not None).items():
            raw = env.get(trait.metadata["env"], "").strip()
            if name in configured or not raw:
                continue
            try:
                setattr(self, name, json.loads(raw) if isinstance(trait, Dict) else raw)
            except Exception as exc:
                raise ValueError(f"{trait.metadata['env']}={raw!r} is not valid: {exc}") from exc

    @validate("plans")
    def _valid_plans(self, proposal):
        for name, spec in proposal["value"].items():
            _check_limits(f"plan {name!r}", spec)
        return proposal["value"]

    @validate("enterprise")
    def _valid_enterprise(self, proposal):
        for group, spec in proposal["value"].items():
            _check_limits(f"enterprise plan of group {group!r}", spec)
        return proposal["value"]

    def all_plans(self) -> dict:
        """The built-in plans with the configured ones laid over them."""
        merged = copy.deepcopy(DEFAULT_PLANS)
        merged.update(copy.deepcopy(self.plans))
        return merged

    def to_service(self) -> dict:
        """What the service reads from ``VIDRAG_PLANS``."""
        plans = self.all_plans()
        if self.default_plan not in plans:
            raise ValueError(
                f"VIDRAG_DEFAULT_PLAN={self.default_plan!r} is not a plan: one of {', '.join(plans)}"
            )
        return {
            "default_plan": self.default_plan,
            "plans": plans,
            "enterprise": copy.deepcopy(self.enterprise),
            "upgrade_url": self.upgrade_url,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_service(), sort_keys=True)


def main() -> None:
    """Print every option with its environment variable and help."""
    VidragPlans.class_print_help()


if __name__ == "__main__":
    main()
