"""Network and addressing failures read as what they are (#7.2), and bad header values (CR/LF).

* A refused connection names host, port and cause (not just an exception class).
* A 404 on a collection-level endpoint means the base URL or API version is wrong: a
  ConfigError (exit 2) with a hint, not a transient failure (exit 4).
* A token that cannot go into an HTTP header is a ConfigError that never quotes the token.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from crmsync.connectors.salesforce import SalesforceAuth, SalesforceConnector
from crmsync.errors import AuthError, ConfigError, ExitCode, TransientError
from crmsync.retry import RetryPolicy

LEAD = "salesforce:Lead"  # no deal rollups: the first call is the Lead query

pytestmark = pytest.mark.filterwarnings(
    "ignore:The 'initial' parameter is deprecated:DeprecationWarning")


def _connector(
    fieldmap: Any, base_url: str, token: str = "00Dtoken", **kw: Any
) -> SalesforceConnector:
    return SalesforceConnector(fieldmap, auth=SalesforceAuth.with_session(base_url, token),
                               policy=RetryPolicy(attempts=2, budget_s=60), sleep=[].append, **kw)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _NotSalesforce(BaseHTTPRequestHandler):
    """A web server that is not Salesforce: 404 with an HTML page for every request."""

    def _answer(self) -> None:
        body = b"<html><body><h1>Not Found</h1></body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Keep test output quiet."""


@pytest.fixture
def not_salesforce() -> Iterator[str]:
    """The base URL of a loopback server that answers 404 to everything."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotSalesforce)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_refused_connection_names_host_port_and_cause(
    salesforce_fieldmap: Any, closed_port: int,
) -> None:
    connector = _connector(salesforce_fieldmap, f"http://127.0.0.1:{closed_port}")
    with pytest.raises(TransientError) as caught:
        list(connector.read(LEAD, None))
    assert str(caught.value) == (
        f"Salesforce query Lead: connection refused to 127.0.0.1:{closed_port}")
    assert caught.value.exit_code == ExitCode.TRANSIENT


def test_a_server_that_is_not_salesforce_is_a_config_error(
    salesforce_fieldmap: Any, not_salesforce: str,
) -> None:
    connector = _connector(salesforce_fieldmap, not_salesforce)
    with pytest.raises(ConfigError) as caught:
        list(connector.read(LEAD, None))
    message = str(caught.value)
    assert caught.value.exit_code == ExitCode.BAD_CONFIG
    assert "check [crm] base_url / api_version" in message
    host = not_salesforce.removeprefix("http://")
    assert f"{host} answered 404 for /services/data/v59.0/query/" in message
    assert "SELECT" not in message  # the SOQL (query string) stays out
    assert connector.api_calls() == 1  # a config error is not retried


def test_an_api_version_the_org_does_not_serve_is_a_config_error(
    salesforce_server: Any, salesforce_fieldmap: Any,
) -> None:
    # The emulator serves 31.0-59.0 and, like Salesforce, answers 404 NOT_FOUND for others.
    connector = _connector(salesforce_fieldmap, salesforce_server.base_url,
                           salesforce_server.token, api_version="99.0")
    with pytest.raises(ConfigError, match=r"check \[crm\] base_url / api_version: .* answered "
                                          r"404 NOT_FOUND for /services/data/v99\.0/sobjects/"):
        connector.check()


@pytest.mark.parametrize("token", ["00DXq7Zk!AQ8pw\r\n", "00DXq7Zk!AQ8pw\r", "00DXq7Zk\n!AQ8pw"])
def test_a_token_with_a_line_break_is_a_config_error_that_never_quotes_it(
    salesforce_server: Any, salesforce_fieldmap: Any, token: str,
) -> None:
    connector = _connector(salesforce_fieldmap, salesforce_server.base_url, token)
    with pytest.raises(ConfigError) as caught:
        list(connector.read(LEAD, None))
    message = str(caught.value)
    assert caught.value.exit_code == ExitCode.BAD_CONFIG
    assert "line break" in message and message.startswith("Salesforce query Lead: ")
    assert "Xq7Zk" not in message and "AQ8pw" not in message
    # Nothing chained either, so a logged traceback cannot carry the token.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert connector.api_calls() == 0  # refused before anything was sent


@pytest.mark.parametrize(("base_url", "problem"), [
    ("http://127.0.0.1:abc", "is not a valid URL"),
    ("http://[::1", "is not a valid URL"),
    ("127.0.0.1:8765", "needs https://"),
    ("https://acme.my.salesforce.com\r\n", "whitespace or control characters"),
    ("https://", "names no host"),
])
def test_an_unusable_base_url_is_a_config_error_before_any_call(
    salesforce_fieldmap: Any, base_url: str, problem: str,
) -> None:
    # Before: a ValueError traceback from urllib.parse inside simple-salesforce, or
    # "name not resolved: none" after the retry budget for a URL without a scheme.
    with pytest.raises(ConfigError, match=r"check \[crm\] base_url: .*" + re.escape(problem)):
        _connector(salesforce_fieldmap, base_url)


def test_a_password_login_to_a_server_that_is_not_salesforce_is_a_config_error(
    salesforce_fieldmap: Any, not_salesforce: str,
) -> None:
    # Before: AuthError "login failed (None)" (exit 3), as if the password were wrong.
    auth = SalesforceAuth.with_password("u@example.com", "pw", "tok", instance_url=not_salesforce)
    connector = SalesforceConnector(salesforce_fieldmap, auth=auth,
                                    policy=RetryPolicy(attempts=2, budget_s=60), sleep=[].append)
    with pytest.raises(ConfigError, match=r"check \[crm\] domain / base_url: the login endpoint"):
        connector.check()


def test_a_wrong_password_is_still_an_auth_error(
    salesforce_server: Any, salesforce_fieldmap: Any, salesforce_login: dict[str, str],
) -> None:
    auth = SalesforceAuth.with_password(salesforce_login["username"], "wrong",
                                        salesforce_login["security_token"],
                                        instance_url=salesforce_server.base_url)
    connector = SalesforceConnector(salesforce_fieldmap, auth=auth,
                                    policy=RetryPolicy(attempts=2, budget_s=60), sleep=[].append)
    with pytest.raises(AuthError, match=r"login failed \(INVALID_LOGIN\)"):
        connector.check()


@pytest.mark.parametrize("header", [
    "api-usage=25/15000; per-app-api-usage=17/250(appName=sample-connected-app)",
    "per-app-api-usage=17/250(appName=sample-connected-app); api-usage=25/15000",
    "api-usage=25/15000",
])
def test_the_orgs_daily_usage_is_read_from_any_order_of_limit_info_parts(header: str) -> None:
    from crmsync.connectors.salesforce.client import daily_usage

    assert daily_usage(header) == (25, 15000)
    assert daily_usage("per-app-api-usage=17/250(appName=x)") is None
