"""Trusted-proxy SSO: an auth proxy (oauth2-proxy and the like) signs users in with the
identity provider and forwards requests with the user's name in a header.

The header is believed only from the configured proxy addresses *and* with the shared
secret, so a client that reaches the API directly cannot name itself. The named user must
exist locally (the role comes from opsdeck, not from the proxy) and not be disabled; the
identity provider is then responsible for two-factor sign-in.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from starlette.datastructures import Headers

from core.settings import ApiSettings

log = logging.getLogger(__name__)


class TrustedProxy:
    def __init__(self, settings: ApiSettings) -> None:
        self._networks = [
            ipaddress.ip_network(a, strict=False) for a in settings.trusted_proxy_addresses
        ]
        self._header = settings.trusted_proxy_header
        self._secret_header = settings.trusted_proxy_secret_header
        secret = settings.trusted_proxy_secret
        # An empty secret is no secret: compare_digest(b"", b"") is true, so any client
        # that sends an empty header would pass. Without one the proxy is not believed.
        self._secret = (secret.get_secret_value() if secret is not None else "") or None

    @property
    def enabled(self) -> bool:
        return bool(self._networks) and self._secret is not None

    def _trusted(self, client_host: str | None) -> bool:
        if client_host is None:
            return False
        try:
            address = ipaddress.ip_address(client_host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def identity(self, client_host: str | None, headers: Headers) -> str | None:
        """The user the proxy vouches for, or None when the request is not from the proxy."""
        name = headers.get(self._header)
        if not self.enabled or name is None:
            return None
        if not self._trusted(client_host):
            log.warning("identity header from untrusted address %s ignored", client_host)
            return None
        assert self._secret is not None
        offered = headers.get(self._secret_header, "")
        if not offered or not hmac.compare_digest(offered.encode(), self._secret.encode()):
            log.warning("identity header without the proxy secret from %s ignored", client_host)
            return None
        return name.strip() or None
