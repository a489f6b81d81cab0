"""Salesforce authentication: an existing session, username-password (SOAP) or JWT bearer login.

:class:`SalesforceAuth` holds the secrets (never shown in ``repr``) and builds the
simple-salesforce client; against the plain-http sandbox the login host's traffic is redirected
there too, so every login flow can be exercised over loopback.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from simple_salesforce import Salesforce

from crmsync.connectors.transport import HttpsToHttpAdapter, salesforce_session
from crmsync.errors import ConfigError


@dataclass(frozen=True, slots=True)
class SalesforceAuth:
    """How to authenticate to one Salesforce org. Secrets never appear in ``repr``.

    Build one with :meth:`with_session`, :meth:`with_password` or :meth:`with_jwt`.

    Attributes:
        mode: ``session`` (an existing access token), ``password`` (username, password and
            security token; SOAP login) or ``jwt`` (OAuth 2.0 JWT bearer flow).
        instance_url: The org's URL (``https://acme.my.salesforce.com``), or the sandbox's
            ``http://127.0.0.1:PORT``. Required for ``session``; for the other modes it only
            matters when it is ``http://`` (login is then sent to the sandbox too).
        session_id: Access token (``session`` mode).
        username: Login user (``password``/``jwt``).
        password: Password (``password``).
        security_token: Security token appended to the password (``password``).
        consumer_key: Connected app's consumer key (``jwt``).
        private_key_file: PEM file the JWT is signed with (``jwt``).
        domain: Login domain: ``login``, ``test`` or a My Domain prefix.
    """

    mode: Literal["session", "password", "jwt"]
    instance_url: str | None = None
    session_id: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    consumer_key: str | None = field(default=None, repr=False)
    private_key_file: str | None = None
    domain: str = "login"

    @classmethod
    def with_session(cls, instance_url: str, session_id: str) -> SalesforceAuth:
        """Use an existing access token for ``instance_url`` (no login call; never refreshed)."""
        return cls("session", instance_url=instance_url, session_id=session_id)

    @classmethod
    def with_password(
        cls, username: str, password: str, security_token: str, *, domain: str = "login",
        instance_url: str | None = None,
    ) -> SalesforceAuth:
        """Log in with username, password and security token (re-login on expiry)."""
        return cls("password", instance_url=instance_url, username=username, password=password,
                   security_token=security_token, domain=domain)

    @classmethod
    def with_jwt(
        cls, username: str, consumer_key: str, private_key_file: str, *, domain: str = "login",
        instance_url: str | None = None,
    ) -> SalesforceAuth:
        """Use the OAuth 2.0 JWT bearer flow of a connected app (re-login on expiry)."""
        return cls("jwt", instance_url=instance_url, username=username,
                   consumer_key=consumer_key, private_key_file=private_key_file, domain=domain)

    def validate(self) -> None:
        """Raise ConfigError naming every setting this mode needs and lacks (never values)."""
        needed = {
            "session": ("instance_url", "session_id"),
            "password": ("username", "password", "security_token"),
            "jwt": ("username", "consumer_key", "private_key_file"),
        }.get(self.mode)
        if needed is None:
            raise ConfigError(f"unknown Salesforce auth mode {self.mode!r}: "
                              "use session, password or jwt")
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise ConfigError(f"Salesforce {self.mode} auth needs {', '.join(missing)}")
        if self.instance_url:
            _check_base_url(self.instance_url)
        if self.mode == "jwt" and not os.path.isfile(str(self.private_key_file)):
            raise ConfigError(f"Salesforce jwt auth: private key file {self.private_key_file} "
                              "does not exist")

    def connect(
        self, api_version: str, *, pool_size: int = 10,
        on_response: Callable[..., Any] | None = None,
    ) -> Salesforce:
        """Return a simple-salesforce client (logging in for ``password``/``jwt``).

        Args:
            api_version: The REST API version to pin.
            pool_size: HTTP connections kept per host.
            on_response: A ``requests`` response hook, installed before any login call.
        """
        self.validate()
        base = self.instance_url or f"https://{self.domain}.salesforce.com"
        session, instance_url = salesforce_session(base, pool_size=pool_size)
        if on_response is not None:
            session.hooks["response"].append(on_response)
        # object_pairs_hook=None (simple-salesforce's documented switch to plain dicts): its
        # default builds an OrderedDict per JSON object in Python, twice the parse time of a
        # 2,000-record query page; dicts keep their order anyway.
        if self.mode == "session":
            return Salesforce(instance_url=instance_url, session_id=self.session_id,
                              session=session, version=api_version, object_pairs_hook=None)
        if urlsplit(base).scheme == "http":
            # The sandbox answers the login flows too: send the login host's traffic there.
            session.mount(f"https://{self.domain}.salesforce.com/",
                          _RedirectAdapter(urlsplit(base).netloc))
        if self.mode == "password":
            return Salesforce(username=self.username, password=self.password,
                              security_token=self.security_token, domain=self.domain,
                              session=session, version=api_version, object_pairs_hook=None)
        return Salesforce(username=self.username, consumer_key=self.consumer_key,
                          privatekey_file=self.private_key_file, domain=self.domain,
                          session=session, version=api_version, object_pairs_hook=None)


def _check_base_url(url: str) -> None:
    """Raise ConfigError when ``url`` cannot address a Salesforce org (before any call).

    The URL is not echoed: a pasted value may carry credentials or stray control characters.
    """
    problem = None
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        problem = "contains whitespace or control characters (a stray line break?)"
    else:
        try:
            parts = urlsplit(url)
            _ = parts.port  # raises ValueError for a port that is not a number
        except ValueError:
            problem = "is not a valid URL (check the host and port)"
        else:
            if parts.scheme not in ("http", "https"):
                problem = "needs https:// (or http:// for the sandbox) in front"
            elif not parts.hostname:
                problem = "names no host"
    if problem:
        raise ConfigError(f"check [crm] base_url: the Salesforce instance URL {problem}")


class _RedirectAdapter(HttpsToHttpAdapter):
    """Send ``https://<login host>/...`` to ``http://<netloc>/...`` (sandbox logins only)."""

    def __init__(self, netloc: str) -> None:
        super().__init__()
        self.netloc = netloc

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Rewrite scheme and host, then send."""
        if request.url:
            parts = urlsplit(request.url)
            request.url = parts._replace(scheme="http", netloc=self.netloc).geturl()
        return super().send(request, **kwargs)
