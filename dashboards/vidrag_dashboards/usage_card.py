"""The Usage & billing card: what the caller's plan allows, what is used, and how to get more.

Shown when the Workbench reaches the vidrag service (``wb.service``), as its own tab: one
bar per metric of the plan (used, reserved by work in progress, the limit), when monthly
messages reset, the plan's name, and the billing actions:

- **Upgrade** asks the service for a Stripe Checkout page and offers the link to it (the
  plan changes when Stripe confirms the payment to the service, not on the way back);
- **Manage billing** likewise opens Stripe's customer portal;
- with billing off the card says so plainly and shows neither.

Hub admins also get a table of every user's plan and usage. Every figure is written out
as text beside its bar (the bars are decoration for sighted readers), and the card
refreshes when collections or videos change (``state.revision``) or on Refresh.
"""

from __future__ import annotations

import pandas as pd
import panel as pn

from .card import Card
from .controls import button, table
from .format import esc

#: how each metric of ``GET api/usage`` is named and shown
METRICS = {
    "videos": ("Videos", "{:g}"),
    "minutes": ("Minutes of video", "{:.0f}"),
    "messages": ("Chat messages this period", "{:g}"),
    "storage": ("Storage", None),
}
ADMIN_COLUMNS = ["user", "plan", "videos", "minutes", "messages", "storage"]

BAR_CSS = """
.vidrag-meter { margin: 0 0 12px 0; }
.vidrag-meter p { margin: 0 0 4px 0; color: #1f2328; }
.vidrag-bar { display: flex; height: 14px; border: 1px solid #57606a; border-radius: 4px; background: #fff; overflow: hidden; }
.vidrag-bar .used { background: #0a58ca; }
.vidrag-bar .reserved { background: repeating-linear-gradient(45deg, #8c959f, #8c959f 4px, #d0d7de 4px, #d0d7de 8px); }
.vidrag-bar.full .used { background: #b02a37; }
.vidrag-billing-off { color: #1f2328; }
a.vidrag-go { font-weight: 600; color: #0a58ca; }
"""


def amount(metric: str, value: float | None) -> str:
    """A figure as people read it (storage in KB, MB or GB; minutes rounded, to a tenth
    below ten), never a bare 0 for something used."""
    if value is None:
        return "no limit"
    if metric == "storage":
        if value >= 1024**3:
            return f"{value / 1024**3:.1f} GB"
        if value >= 1024**2 or value == 0:
            return f"{value / 1024**2:.0f} MB"
        return f"{max(1, round(value / 1024))} KB"
    if metric == "minutes" and 0 < value < 10 and value != int(value):
        return f"{value:.1f}"
    return METRICS.get(metric, ("", "{:g}"))[1].format(value)


def meter_html(metric: str, figures: dict) -> str:
    """One metric as a sentence and a bar (used solid, reserved hatched)."""
    title = METRICS.get(metric, (metric.title(), "{:g}"))[0]
    used, held, limit = figures.get("used") or 0, figures.get("reserved") or 0, figures.get("limit")
    sentence = f"{esc(title)}: {amount(metric, used)} used"
    if held:
        sentence += f", {amount(metric, held)} reserved"
    sentence += f" of {amount(metric, limit)}" if limit is not None else " (no limit)"
    full = limit is not None and used + held >= limit
    if limit:
        # a sliver at least for what is used or held, so a small use still shows on the bar
        used_pct = min(100.0, max(100.0 * used / limit, 0.5 if used else 0.0))
        held_pct = min(100.0 - used_pct, max(100.0 * held / limit, 0.5 if held else 0.0))
    else:
        used_pct = held_pct = 0.0
    bar = (
        f'<div class="vidrag-bar{" full" if full else ""}" aria-hidden="true">'
        f'<span class="used" style="width:{used_pct:.1f}%"></span>'
        f'<span class="reserved" style="width:{held_pct:.1f}%"></span></div>'
    )
    return f'<div class="vidrag-meter" data-metric="{esc(metric)}"><p>{sentence}</p>{bar}</div>'


class UsageCard(Card):
    """The caller's plan, usage bars and billing actions (admins: everyone's usage too)."""

    title = "Usage & billing"
    css_class = "vidrag-usage"

    def __init__(self, state, notices=None, **params) -> None:
        super().__init__(state, notices, **params)
        self.plan = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["vidrag-plan"])
        self.meters = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[BAR_CSS])
        self.billing = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[BAR_CSS])
        self.upgrade_button = button("Upgrade", "primary", visible=False)
        self.manage_button = button("Manage billing", "light", visible=False)
        self.refresh_button = button("Refresh usage", "light")
        self.go = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[BAR_CSS])
        self.admin_heading = pn.pane.HTML("<h3>Everyone's usage</h3>", visible=False)
        self.admin_table = table(
            pd.DataFrame(columns=ADMIN_COLUMNS),
            visible=False,
            max_height=320,
            css_classes=["vidrag-usage-admin"],
        )
        self.usage: dict = {}
        self.upgrade_button.on_click(lambda e: self.guard(self.upgrade))
        self.manage_button.on_click(lambda e: self.guard(self.manage))
        self.refresh_button.on_click(lambda e: self.guard(self.refresh))
        state.param.watch(lambda e: self.guard(self.refresh), "revision")
        self.guard(self.refresh)

    def body(self) -> list:
        actions = pn.Row(self.upgrade_button, self.manage_button, self.refresh_button)
        return [
            self.notices,
            self.plan,
            self.meters,
            self.billing,
            actions,
            self.go,
            self.admin_heading,
            self.admin_table,
        ]

    # ------------------------------------------------------------------------ reading
    def refresh(self) -> None:
        """Read the caller's usage (and, for an admin, everyone's) from the service."""
        service = self.wb.service
        if service is None:
            return
        self.usage = usage = service.usage()
        plan = usage.get("plan") or {}
        name = esc(plan.get("title") or plan.get("name") or "?")
        price = f" ({esc(plan['price'])})" if plan.get("price") else ""
        source = {"admin": " — set by an administrator", "enterprise": " — your organisation's pool"}
        resets = (usage.get("resets_at") or "")[:10]
        self.plan.object = (
            f"<p>You are on the <strong>{name}</strong> plan{price}{source.get(plan.get('source'), '')}."
            + (f" Chat messages reset on {esc(resets)}.</p>" if resets else "</p>")
        )
        self.meters.object = "".join(meter_html(m, f) for m, f in (usage.get("metrics") or {}).items())
        billing = usage.get("billing") or {"enabled": False}
        if not billing.get("enabled"):
            self.billing.object = (
                '<p class="vidrag-billing-off">Billing is off on this service: plans are set by its '
                "administrator, and there is nothing to pay or upgrade here.</p>"
            )
            self.upgrade_button.visible = self.manage_button.visible = False
        else:
            self.billing.object = self._subscription(billing)
            self.upgrade_button.visible = bool(billing.get("can_upgrade"))
            self.manage_button.visible = bool(billing.get("can_manage"))
        self._admin(service)

    def _subscription(self, billing: dict) -> str:
        sub = billing.get("subscription")
        if not sub:
            return "<p>No subscription: Upgrade to pay for more.</p>"
        parts = [f"Subscription: {esc(sub.get('status'))}"]
        if sub.get("grace_until") and sub.get("status") == "past_due":
            parts.append(
                f"the last payment failed; the plan stays until {esc(sub['grace_until'][:10])}: "
                "update the card in Manage billing"
            )
        elif sub.get("cancel_at_period_end") and sub.get("period_end"):
            parts.append(f"ends on {esc(sub['period_end'][:10])}")
        elif sub.get("period_end"):
            parts.append(f"renews on {esc(sub['period_end'][:10])}")
        return f"<p>{'; '.join(parts)}.</p>"

    def _admin(self, service) -> None:
        try:
            admin = bool(service.me().get("admin"))
        except Exception:
            admin = False
        self.admin_heading.visible = self.admin_table.visible = admin
        if not admin:
            return
        rows = []
        for view in service.usage.everyone():
            metrics = view.get("metrics") or {}

            def cell(metric: str, metrics=metrics) -> str:
                f = metrics.get(metric) or {}
                return f"{amount(metric, f.get('used') or 0)} / {amount(metric, f.get('limit'))}"

            rows.append(
                [
                    view.get("user"),
                    (view.get("plan") or {}).get("name"),
                    *(cell(m) for m in ADMIN_COLUMNS[2:]),
                ]
            )
        self.admin_table.value = pd.DataFrame(rows, columns=ADMIN_COLUMNS)

    # ------------------------------------------------------------------------ actions
    def _return_url(self) -> str | None:
        location = pn.state.location
        href = getattr(location, "href", "") if location is not None else ""
        return href.split("?")[0] or None

    def upgrade(self) -> None:
        """Ask the service for a checkout page and offer the link to it."""
        done = self.wb.service.usage.checkout(return_url=self._return_url())
        self.go.object = (
            f'<p><a class="vidrag-go" href="{esc(done["url"])}">Continue to payment</a> '
            "(Stripe's checkout page; your plan changes as soon as the payment is confirmed).</p>"
        )

    def manage(self) -> None:
        """Ask the service for a billing portal page and offer the link to it."""
        done = self.wb.service.usage.portal(return_url=self._return_url())
        self.go.object = (
            f'<p><a class="vidrag-go" href="{esc(done["url"])}">Open billing</a> (Stripe\'s page).</p>'
        )
