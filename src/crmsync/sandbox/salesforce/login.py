"""The SOAP ``login`` call (``POST /services/Soap/u/NN.N``) password-auth clients use (§1.1).

simple-salesforce logs in this way at start-up and again after a 401 ``INVALID_SESSION_ID``; it
reads ``<sessionId>`` and takes its instance from the host of ``<serverUrl>``.
"""

from __future__ import annotations

import re
from html import escape, unescape

from crmsync.sandbox.server import Request, Response

_FIELD = re.compile(r"<(?:\w+:)?(username|password)>(.*?)</(?:\w+:)?\1>", re.DOTALL)


def read_credentials(request: Request) -> tuple[str, str] | None:
    """Return (username, password+token) from a SOAP login envelope, or None."""
    text = request.body.decode("utf-8", "replace")
    found = {name: unescape(value) for name, value in _FIELD.findall(text)}
    if "username" not in found or "password" not in found:
        return None
    return found["username"], found["password"]


def login_success(session_id: str, host: str, version: str, org_id: str, user_id: str, username: str) -> Response:
    """The ``loginResponse`` envelope; ``serverUrl`` points back at this emulator."""
    server = f"https://{host}/services/Soap/u/{version}/{org_id}"
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><loginResponse><result><metadataServerUrl>https://{host}/services/Soap/m/{version}/{org_id}</metadataServerUrl><passwordExpired>false</passwordExpired><sandbox>true</sandbox><serverUrl>{server}</serverUrl><sessionId>{escape(session_id)}</sessionId><userId>{user_id}</userId><userInfo><organizationId>{org_id}</organizationId><userName>{escape(username)}</userName></userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"""
    return Response(200, body, content_type="text/xml;charset=UTF-8")


def login_fault() -> Response:
    """The fault Salesforce answers for bad credentials (HTTP 500, ``INVALID_LOGIN``)."""
    body = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring><detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Invalid username, password, security token; or user locked out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"""
    return Response(500, body, content_type="text/xml;charset=UTF-8")
