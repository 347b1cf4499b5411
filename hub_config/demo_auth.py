"""The demo login for ``make run`` and tests: a few named users sharing one password.

It exists so the workbench can be tried without an OAuth app, and it is only safe on a
machine's loopback interface: the authenticator refuses to start when the hub's public
or internal address is anything else, and logs a warning when it does start.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlparse

from jupyterhub.auth import Authenticator
from traitlets import List, Unicode

from hub_config.options import is_loopback


class DemoLoginRefused(RuntimeError):
    """The demo login was asked to run where other machines could reach it."""


class DemoAuthenticator(Authenticator):
    """Log in as one of :attr:`users` with :attr:`password`. Loopback binds only."""

    users = List(
        Unicode(),
        default_value=["instructor", "student"],
        config=True,
        help="The demo users; nobody else may log in.",
    )

    password = Unicode(
        "",
        config=True,
        help="The password every demo user logs in with (required, at least 8 characters).",
    )

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._refuse_unless_loopback()
        if len(self.password) < 8:
            raise DemoLoginRefused(
                "The demo login needs a password of at least 8 characters "
                "(VIDRAG_DEMO_PASSWORD, or let `make run` generate one)."
            )
        # the only users who can exist; also makes JupyterHub's allow-config check pass
        self.allowed_users = set(self.users)
        self.log.warning(
            "vidrag DEMO login is on: users %s share one password. For a course, set "
            "VIDRAG_AUTH=github or VIDRAG_AUTH=google.",
            ", ".join(self.users),
        )

    def _refuse_unless_loopback(self) -> None:
        app = self.parent
        if app is None:
            return
        binds = {
            "public (VIDRAG_HUB_IP)": urlparse(getattr(app, "bind_url", "") or "").hostname or "",
            "hub API": getattr(app, "hub_ip", "") or "",
        }
        for what, host in binds.items():
            if not is_loopback(host):
                raise DemoLoginRefused(
                    f"Refusing to start the demo login: the {what} address {host or '(all interfaces)'!r} "
                    "is not a loopback address. The demo users share one password, so it runs on "
                    "127.0.0.1 only. Set VIDRAG_AUTH=github or VIDRAG_AUTH=google to serve a course."
                )

    async def authenticate(self, handler, data: dict) -> str | None:
        """The username when it is a demo user and the password matches, else None."""
        username = self.normalize_username(str(data.get("username", "")).strip())
        given = str(data.get("password", "")).encode()
        if username in self.users and hmac.compare_digest(given, self.password.encode()):
            return username
        self.log.warning("Failed demo login for %r", username)
        return None
