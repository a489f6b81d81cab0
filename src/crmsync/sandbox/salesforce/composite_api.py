"""``/composite`` (dependent subrequests, ``@{ref}`` references, ``allOrNone``) and
``/composite/batch`` (independent subrequests, ``haltOnError``): many calls in one API call.

Each subrequest is routed like a call of its own (sObject rows, queries, collections...) but is
not counted against the daily allowance; the composite call is, once.

* ``/composite``: ``{"allOrNone", "compositeRequest": [{"method", "url", "referenceId", "body"}]}``
  (at most 25) -> ``{"compositeResponse": [{"body", "httpHeaders", "httpStatusCode",
  "referenceId"}]}``. ``@{Ref.id}`` or ``@{Ref.records[0].Id}`` in a url or body reads an
  earlier answer. With ``allOrNone`` the first failure rolls every write back, and the other
  subrequests answer 400 ``PROCESSING_HALTED``; without it, only the subrequests that
  reference a failed one do.
* ``/composite/batch``: ``{"haltOnError", "batchRequests": [{"method", "url", "richInput"}]}``
  (at most 25, urls like ``v59.0/sobjects/Account/001...``) -> ``{"hasErrors", "results":
  [{"statusCode", "result"}]}``; after a failure with ``haltOnError`` the rest answer 412
  ``BATCH_PROCESSING_HALTED``.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from crmsync.sandbox.salesforce.dml import RequestError
from crmsync.sandbox.salesforce.responses import fail
from crmsync.sandbox.server import HttpError, Request, Response

if TYPE_CHECKING:
    from crmsync.sandbox.salesforce.emulator import SalesforceEmulator

MAX_SUBREQUESTS = 25
_REF = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_STEP = re.compile(r"\.([A-Za-z0-9_]+)|\[(\d+)\]")
_VERSIONED = re.compile(r"^/services/data/v(\d+\.\d)(/.*)?$")
_HALTED = "The transaction was rolled back since another operation in the same transaction failed."


class _Unresolved(Exception):
    """A ``@{ref}`` that names no earlier successful answer."""


class CompositeApi:
    """``/composite`` and ``/composite/batch`` for one emulator."""

    def __init__(self, emulator: SalesforceEmulator) -> None:
        self.em = emulator

    def handle(self, request: Request, segs: list[str], version: str) -> Response:
        """Route ``/composite`` (``segs == []``) and ``/composite/batch``."""
        if request.method != "POST":
            raise fail(405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed for this resource")
        body = _body(request)
        if not segs:
            return self._composite(request, body, version)
        if segs == ["batch"]:
            return self._batch(request, body, version)
        raise fail(404, "NOT_FOUND", "The requested resource does not exist")

    # -- /composite --------------------------------------------------------------------------

    def _composite(self, request: Request, body: dict[str, Any], version: str) -> Response:
        subs = body.get("compositeRequest")
        if not isinstance(subs, list) or not subs:
            raise fail(400, "JSON_PARSER_ERROR", "compositeRequest: required field is missing")
        if len(subs) > MAX_SUBREQUESTS:
            raise fail(400, "INVALID_INPUT", f"Limit exceeded: a composite request may hold at "
                       f"most {MAX_SUBREQUESTS} subrequests")
        all_or_none = body.get("allOrNone") is True
        answers: dict[str, Any] = {}
        failed: set[str] = set()
        out: list[dict[str, Any]] = []
        store = self.em.store
        store.begin()
        halted = False
        for sub in subs:
            ref = str(sub.get("referenceId") or "") if isinstance(sub, dict) else ""
            if halted:
                out.append(_halted(ref, _HALTED))
                continue
            try:
                if not isinstance(sub, dict) or not ref or not isinstance(sub.get("url"), str):
                    raise RequestError("JSON_PARSER_ERROR",
                                       "each subrequest needs a method, url and referenceId")
                url = _resolve(sub["url"], answers, failed, encode=True)
                payload = _resolve(sub.get("body"), answers, failed, encode=False)
            except _Unresolved as missing:
                out.append(_halted(ref, f"Invalid reference specified. No value for {missing} "
                                        "found in an earlier subrequest."))
                failed.add(ref)
                continue
            except RequestError as bad:
                out.append({"body": [{"errorCode": bad.error_code, "message": bad.message}],
                            "httpHeaders": {}, "httpStatusCode": bad.status, "referenceId": ref})
                failed.add(ref)
                halted = all_or_none
                continue
            response = self._sub(request, str(sub.get("method", "GET")), url, payload, version,
                                 sub.get("httpHeaders"))
            headers = {}
            if response.status == 201 and isinstance(response.body, dict) and "id" in response.body:
                headers["Location"] = f"{urlsplit(url).path.rstrip('/')}/{response.body['id']}"
            out.append({"body": response.body, "httpHeaders": headers,
                        "httpStatusCode": response.status, "referenceId": ref})
            if response.status >= 400:
                failed.add(ref)
                halted = all_or_none
            else:
                answers[ref] = response.body
        if halted:
            store.rollback()
            for answer in out:
                if answer["httpStatusCode"] < 400:
                    answer.update(_halted(answer["referenceId"], _HALTED))
        else:
            store.commit()
        return Response(200, {"compositeResponse": out})

    # -- /composite/batch --------------------------------------------------------------------

    def _batch(self, request: Request, body: dict[str, Any], version: str) -> Response:
        subs = body.get("batchRequests")
        if not isinstance(subs, list) or not subs:
            raise fail(400, "JSON_PARSER_ERROR", "batchRequests: required field is missing")
        if len(subs) > MAX_SUBREQUESTS:
            raise fail(400, "INVALID_INPUT", f"Limit exceeded: a batch may hold at most "
                       f"{MAX_SUBREQUESTS} subrequests")
        halt = body.get("haltOnError") is True
        results: list[dict[str, Any]] = []
        has_errors = halted = False
        for sub in subs:
            if halted:
                results.append({"statusCode": 412, "result": [
                    {"errorCode": "BATCH_PROCESSING_HALTED",
                     "message": "Batch processing halted per request"}]})
                continue
            if not isinstance(sub, dict) or not isinstance(sub.get("url"), str):
                response = Response(400, [{"errorCode": "JSON_PARSER_ERROR",
                                           "message": "each batch request needs a url"}])
            else:
                url = "/services/data/" + sub["url"].lstrip("/")
                response = self._sub(request, str(sub.get("method", "GET")), url,
                                     sub.get("richInput"), version, None)
            results.append({"statusCode": response.status, "result": response.body})
            if response.status >= 400:
                has_errors = True
                halted = halt
        return Response(200, {"hasErrors": has_errors, "results": results})

    # -- one subrequest ----------------------------------------------------------------------

    def _sub(
        self, outer: Request, method: str, url: str, payload: Any, version: str,
        headers: Any,
    ) -> Response:
        split = urlsplit(url)
        m = _VERSIONED.match(split.path)
        if m is None or m.group(1) not in self.em.supported_versions():
            return Response(404, [{"errorCode": "NOT_FOUND",
                                   "message": "The requested resource does not exist"}])
        rest = [s for s in (m.group(2) or "/").split("/") if s]
        if rest and rest[0] == "composite" and (len(rest) == 1 or rest[1] == "batch"):
            return Response(400, [{"errorCode": "INVALID_INPUT",
                                   "message": "a composite request cannot nest another"}])
        sub_headers = dict(outer.headers)
        if isinstance(headers, dict):
            sub_headers.update({str(k).lower(): str(v) for k, v in headers.items()})
        request = Request(
            method=method.upper(), path=split.path,
            query=parse_qs(split.query, keep_blank_values=True), headers=sub_headers,
            body=b"" if payload is None else json.dumps(payload).encode("utf-8"),
        )
        try:
            return self.em.route(request, rest, m.group(1))
        except HttpError as error:
            return error.response
        except RequestError as error:
            return Response(error.status, [{"errorCode": error.error_code,
                                            "message": error.message}])


def _body(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise fail(400, "JSON_PARSER_ERROR", "the request body must be a JSON object")
    return body


def _halted(ref: str, message: str) -> dict[str, Any]:
    return {"body": [{"errorCode": "PROCESSING_HALTED", "message": message}],
            "httpHeaders": {}, "httpStatusCode": 400, "referenceId": ref}


def _resolve(value: Any, answers: dict[str, Any], failed: set[str], *, encode: bool) -> Any:
    """Replace ``@{Ref.path}`` in strings (recursively through lists and objects)."""
    if isinstance(value, dict):
        return {k: _resolve(v, answers, failed, encode=encode) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, answers, failed, encode=encode) for v in value]
    if not isinstance(value, str) or "@{" not in value:
        return value
    whole = _REF.fullmatch(value)
    if whole and not encode:
        return _lookup(whole, answers)  # a lone reference keeps its JSON type
    return _REF.sub(lambda m: str(_lookup(m, answers)), value)


def _lookup(match: re.Match[str], answers: dict[str, Any]) -> Any:
    ref, path = match.group(1), match.group(2)
    if ref not in answers:
        raise _Unresolved(match.group(0)[2:-1])
    value = answers[ref]
    for name, index in _STEP.findall(path):
        try:
            value = value[int(index)] if index else value[name]
        except (KeyError, IndexError, TypeError):
            raise _Unresolved(match.group(0)[2:-1]) from None
    return value
