"""Google login that admits every verified account of the allowed Workspace domains.

GoogleOAuthenticator's ``hosted_domain`` only *blocks* accounts outside the domains; to
admit the rest one would set ``allow_all``, but JupyterHub then skips ``check_allowed``,
which is where GoogleOAuthenticator refuses unverified e-mail addresses. This subclass
admits domain members inside ``check_allowed``, after that check.
"""

from __future__ import annotations

from oauthenticator.google import GoogleOAuthenticator
from traitlets import Bool


class VidragGoogleOAuthenticator(GoogleOAuthenticator):
    """GoogleOAuthenticator plus: verified accounts whose ``hd`` is in ``hosted_domain`` may log in."""

    allow_hosted_domains = Bool(
        True,
        config=True,
        help="""Admit every account with a verified e-mail whose Workspace domain (the `hd`
        claim) is in `hosted_domain`. When False, `allowed_users` (and admins) only.""",
    )

    async def check_allowed(self, username: str, auth_model: dict | None) -> bool:
        """Allowed by name or admin status, or as a verified member of a hosted domain."""
        # the parent raises 403 for an unverified e-mail before anything else
        if await super().check_allowed(username, auth_model):
            return True
        if auth_model is None or not (self.allow_hosted_domains and self.hosted_domain):
            return False
        user_info = auth_model["auth_state"][self.user_auth_state_key]
        return user_info.get("hd", "") in self.hosted_domain
