"""``vidrag-hub billing reconcile``: bring every subscribed user's plan in line with Stripe.

Run it periodically (a cron job or a Kubernetes CronJob beside the service): it repairs
what missed webhooks left behind and ends grace periods that are over. It reads the same
environment as the service (the shared database, ``STRIPE_*`` keys).
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str]) -> int:
    """The ``billing`` subcommands; the exit code (0 done, 1 a user not reconciled, 2 misconfigured)."""
    parser = argparse.ArgumentParser(prog="vidrag-hub billing", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    reconcile = commands.add_parser(
        "reconcile", help="bring every subscribed user's plan in line with Stripe"
    )
    reconcile.add_argument("--json", action="store_true", help="print the outcome per subscription as JSON")
    args = parser.parse_args(argv)

    from vidrag_kernel.errors import VidragError

    from .app import Service
    from .billing_routes import provider_from_env
    from .settings import ServiceSettings

    try:
        service = Service(ServiceSettings.from_env())
        billing = provider_from_env(service)
    except (ValueError, VidragError) as exc:  # one line naming the variable to fix
        print(f"vidrag-hub billing: {exc}", file=sys.stderr)
        return 2
    if billing is None:
        print("vidrag-hub billing: billing is off (no STRIPE_API_KEY): nothing to reconcile", file=sys.stderr)
        return 2
    try:
        outcome = billing.reconcile()
    finally:
        if service._catalog is not None:
            service._catalog.close()
    if args.json:
        print(json.dumps(outcome, indent=2))
    else:
        for row in outcome:
            print(f"{row.get('user')}: {row.get('outcome') or row.get('error')}")
    return 1 if any("error" in row for row in outcome) else 0
