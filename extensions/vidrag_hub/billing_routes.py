"""Billing routes: Upgrade (Checkout), Manage billing (Customer Portal) and Stripe's webhook.

``api/billing/checkout`` and ``api/billing/portal`` act for the hub user who calls them.
``stripe/webhook`` is the one route without hub auth: Stripe calls it, and the
``Stripe-Signature`` over the raw body is its authentication (``vidrag_hub.billing``).
With billing off (no ``STRIPE_API_KEY``) all three answer 409 ``billing_off``.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from vidrag_kernel.errors import InvalidInput

from .billing import MAX_EVENT_BYTES, BillingOff, InvalidWebhook, from_env
from .deps import User


class CheckoutIn(BaseModel):
    #: a paid plan (default: the first one Stripe sells)
    plan: str | None = None
    #: where Stripe sends the user back (the dashboard's page); default the service's root
    return_url: str | None = None


class PortalIn(BaseModel):
    return_url: str | None = None


def _return_url(request: Request, given: str | None, prefix: str) -> str:
    if not given:
        return str(request.base_url).rstrip("/") + prefix
    parts = urlsplit(given)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput("return_url must be an http(s) URL")
    return given


def provider_from_env(service, environ: Mapping[str, str] | None = None):
    """The service's billing provider as the environment configures it (None: billing off),
    on the service's catalog and its configured plans."""
    return from_env(
        lambda: service.catalog,
        environ,
        book=lambda: getattr(getattr(service, "quotas", None), "book", None),
    )


def router(service) -> APIRouter:
    """The billing routes; sets ``service.billing`` from the environment if nobody has."""
    if getattr(service, "billing", None) is None:
        service.billing = provider_from_env(service)
    prefix = service.settings.prefix
    api = prefix + "api"
    routes = APIRouter()

    def provider():
        if service.billing is None:
            raise BillingOff("Billing is off on this service: everyone is on the default plan")
        return service.billing

    @routes.post(api + "/billing/checkout", tags=["billing"])
    def checkout(user: User, request: Request, body: CheckoutIn | None = None) -> dict:
        """Start an upgrade: a Stripe Checkout Session for the caller; answer ``{"url": ...}``."""
        body = body or CheckoutIn()
        billing = provider()
        return billing.checkout(user.name, body.plan, _return_url(request, body.return_url, prefix))

    @routes.post(api + "/billing/portal", tags=["billing"])
    def portal(user: User, request: Request, body: PortalIn | None = None) -> dict:
        """Manage billing: a Stripe Customer Portal session for the caller; ``{"url": ...}``."""
        body = body or PortalIn()
        billing = provider()
        return billing.portal(user.name, _return_url(request, body.return_url, prefix))

    @routes.post(prefix + "stripe/webhook", tags=["billing"])
    async def stripe_webhook(request: Request) -> dict:
        """Stripe's event deliveries (no hub login: the Stripe-Signature is checked)."""
        billing = provider()
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_EVENT_BYTES:
            raise InvalidWebhook("The event is too large to be a Stripe event")
        payload = await request.body()
        signature = request.headers.get("stripe-signature")
        return await run_in_threadpool(billing.handle_webhook, payload, signature)

    return routes
