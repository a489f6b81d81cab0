"""The SOAP ``login`` call (``POST /services/Soap/u/NN.N``) password-auth clients use (§1.1).

simple-salesforce logs in this way at start-up and again after a 401 ``INVALID_SESSION_ID``; it
reads ``<sessionId>`` and takes its instance from the host of ``<serverUrl>``.
"""

from __future__ import annotations

import re
from html import escape, unescape
from typing import TYPE_CHECKING, Any

from crmsync.sandbox.salesforce.values import to_json
from crmsync.sandbox.server import Request, Response

if TYPE_CHECKING:
    from crmsync.sandbox.salesforce.emulator import SalesforceEmulator

_FIELD = re.compile(r"<(?:\w+:)?(username|password)>(.*?)</(?:\w+:)?\1>", re.DOTALL)


def read_credentials(request: Request) -> tuple[str, str] | None:
    """Return (username, password+token) from a SOAP login envelope, or None."""
    text = request.body.decode("utf-8", "replace")
    found = {name: unescape(value) for name, value in _FIELD.findall(text)}
    if "username" not in found or "password" not in found:
        return None
    return found["username"], found["password"]


_ENVELOPE_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns="urn:partner.soap.sforce.com" xmlns:sf="urn:fault.partner.soap.sforce.com"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
)
_ENVELOPE_CLOSE = "</soapenv:Body></soapenv:Envelope>"
_BAD_LOGIN = "Invalid username, password, security token; or user locked out."


def login_success(
    session_id: str, host: str, version: str, org_id: str, user_id: str, username: str
) -> Response:
    """The ``loginResponse`` envelope; ``serverUrl`` points back at this emulator."""
    server = f"https://{host}/services/Soap/u/{version}/{org_id}"
    body = (
        f"{_ENVELOPE_OPEN}<loginResponse><result>"
        f"<metadataServerUrl>https://{host}/services/Soap/m/{version}/{org_id}</metadataServerUrl>"
        "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
        f"<serverUrl>{server}</serverUrl><sessionId>{escape(session_id)}</sessionId>"
        f"<userId>{user_id}</userId><userInfo><organizationId>{org_id}</organizationId>"
        f"<userName>{escape(username)}</userName></userInfo></result></loginResponse>"
        f"{_ENVELOPE_CLOSE}"
    )
    return Response(200, body, content_type="text/xml;charset=UTF-8")


def login_fault() -> Response:
    """The fault Salesforce answers for bad credentials (HTTP 500, ``INVALID_LOGIN``)."""
    body = (
        f"{_ENVELOPE_OPEN}<soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode>"
        f"<faultstring>INVALID_LOGIN: {_BAD_LOGIN}</faultstring>"
        '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"
        f"<sf:exceptionMessage>{_BAD_LOGIN}</sf:exceptionMessage>"
        f"</sf:LoginFault></detail></soapenv:Fault>{_ENVELOPE_CLOSE}"
    )
    return Response(500, body, content_type="text/xml;charset=UTF-8")


def identity(em: SalesforceEmulator, host: str) -> dict[str, Any]:
    """``GET /id/{org}/{user}``: who the session belongs to, with the org's service URLs.

    The URLs keep the literal ``{version}`` placeholder, as the real identity service sends them.
    """
    user = em.store.get("User", em.api_user_id) or {}
    base = f"http://{host}"
    org, uid = em.org_id, em.api_user_id
    return {
        "id": f"{base}/id/{org}/{uid}",
        "asserted_user": True,
        "user_id": uid,
        "organization_id": org,
        "username": user.get("Username"),
        "nick_name": user.get("Alias"),
        "display_name": user.get("Name"),
        "email": user.get("Email"),
        "email_verified": True,
        "first_name": user.get("FirstName"),
        "last_name": user.get("LastName"),
        "timezone": "GMT",
        "photos": {"picture": f"{base}/profilephoto/005/F",
                   "thumbnail": f"{base}/profilephoto/005/T"},
        "addr_street": None, "addr_city": None, "addr_state": None, "addr_country": "US",
        "addr_zip": None, "mobile_phone": None, "mobile_phone_verified": False,
        "is_lightning_login_user": False,
        "status": {"created_date": None, "body": None},
        "urls": {
            "enterprise": f"{base}/services/Soap/c/{{version}}/{org}",
            "metadata": f"{base}/services/Soap/m/{{version}}/{org}",
            "partner": f"{base}/services/Soap/u/{{version}}/{org}",
            "rest": f"{base}/services/data/v{{version}}/",
            "sobjects": f"{base}/services/data/v{{version}}/sobjects/",
            "search": f"{base}/services/data/v{{version}}/search/",
            "query": f"{base}/services/data/v{{version}}/query/",
            "recent": f"{base}/services/data/v{{version}}/recent/",
            "tooling_soap": f"{base}/services/Soap/T/{{version}}/{org}",
            "tooling_rest": f"{base}/services/data/v{{version}}/tooling/",
            "profile": f"{base}/{uid}",
            "custom_domain": base,
        },
        "active": True,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": "en_US",
        "utcOffset": 0,
        "last_modified_date": to_json("datetime", user.get("LastModifiedDate")),
        "is_app_installed": True,
    }
