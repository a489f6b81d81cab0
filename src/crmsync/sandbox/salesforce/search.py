"""SOSL search (``GET /search/?q=FIND {...}``) and recently used records (``GET /recent``).

Supported SOSL: ``FIND {terms} [IN ALL|NAME|EMAIL|PHONE FIELDS] [RETURNING Object[(fields
[WHERE condition] [ORDER BY ...] [LIMIT n])] {, ...}] [LIMIT n]``. Terms are words that must all
occur (a trailing ``*`` matches any ending, ``?`` one character); ``"quoted phrases"`` must occur
as written. Without ``RETURNING`` the searchable standard objects are searched for their ids.
Answers ``{"searchRecords": [...]}`` as since v37; anything else is ``MALFORMED_SEARCH``.

``/recent`` has no record of what a user viewed: it lists the most recently modified records of
the searchable objects (``?limit=``, default 200), each with ``attributes``, ``Id`` and ``Name``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from crmsync.sandbox.salesforce.query import CompiledQuery
from crmsync.sandbox.salesforce.responses import fail
from crmsync.sandbox.salesforce.soql import SoqlError
from crmsync.sandbox.salesforce.store import Record
from crmsync.sandbox.salesforce.values import STRING_TYPES
from crmsync.sandbox.server import Request, Response

if TYPE_CHECKING:
    from crmsync.sandbox.salesforce.emulator import SalesforceEmulator

SEARCHABLE = ("Account", "Contact", "Lead", "Opportunity")
_FIND = re.compile(
    r"^\s*FIND\s*\{(?P<terms>(?:[^{}\\]|\\.)*)\}"
    r"(?:\s+IN\s+(?P<group>ALL|NAME|EMAIL|PHONE)\s+FIELDS)?"
    r"(?:\s+RETURNING\s+(?P<returning>.*?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SPEC = re.compile(r"\s*(?P<obj>\w+)\s*(?:\((?P<inner>[^()]*)\))?\s*(?:,|$)")
_INNER = re.compile(r"^(?P<fields>.*?)(?P<rest>\s+(?:WHERE|ORDER\s+BY|LIMIT)\s.*)?$",
                    re.IGNORECASE | re.DOTALL)
_WORD = re.compile(r"[\w@.+-]+")


class SearchApi:
    """``/search`` and ``/recent`` for one emulator."""

    def __init__(self, emulator: SalesforceEmulator) -> None:
        self.em = emulator

    def search(self, request: Request, version: str) -> Response:
        """``GET /search/?q=FIND {...} ...``."""
        text = request.param("q") or ""
        found = _FIND.match(text)
        if found is None:
            raise _malformed(f"unexpected token in search: {text[:40]!r}")
        matcher = _matcher(found.group("terms"))
        group = (found.group("group") or "ALL").upper()
        specs = _returning(found.group("returning"))
        limit = int(found.group("limit")) if found.group("limit") else 2000
        out: list[dict[str, Any]] = []
        for obj_name, inner in specs:
            soql = f"SELECT {inner or 'Id'} FROM {obj_name}"
            if inner and (split := _INNER.match(inner)) and split.group("rest"):
                soql = f"SELECT {split.group('fields')} FROM {obj_name}{split.group('rest')}"
            try:
                query = CompiledQuery(soql, self.em.store, self.em.now(), version)
            except SoqlError as error:
                raise fail(400, "MALFORMED_SEARCH", error.message.strip()) from None
            fields = _searched_fields(query, group)
            hits = [rec for rec in query.matching() if matcher(rec, fields)]
            start = query.parsed.offset or 0
            end = None if query.parsed.limit is None else start + query.parsed.limit
            out.extend(query.render(rec) for rec in hits[start:end])
        return Response(200, {"searchRecords": out[:limit]})

    def recent(self, request: Request, version: str) -> Response:
        """``GET /recent/?limit=n``."""
        try:
            limit = int(request.param("limit") or 200)
        except ValueError:
            raise fail(400, "INVALID_QUERY_PARAMETER", "limit must be a number") from None
        rows: list[tuple[str, Record]] = [
            (name, rec) for name in SEARCHABLE for rec in self.em.store.rows(name)
            if not rec["IsDeleted"]
        ]
        rows.sort(key=lambda item: (item[1]["LastModifiedDate"], item[1]["Id"]), reverse=True)
        return Response(200, [
            {"attributes": {"type": name, "url": f"/services/data/v{version}/sobjects/{name}/"
                                                  f"{rec['Id']}"},
             "Id": rec["Id"], "Name": rec.get("Name")}
            for name, rec in rows[:max(0, limit)]
        ])


def _malformed(message: str) -> Exception:
    return fail(400, "MALFORMED_SEARCH", message)


def _returning(text: str | None) -> list[tuple[str, str | None]]:
    if not text:
        return [(name, None) for name in SEARCHABLE]
    specs: list[tuple[str, str | None]] = []
    pos = 0
    while pos < len(text):
        m = _SPEC.match(text, pos)
        if m is None or m.end() == pos:
            raise _malformed(f"unexpected token in RETURNING: {text[pos:pos + 20]!r}")
        specs.append((m.group("obj"), m.group("inner")))
        pos = m.end()
    return specs


def _searched_fields(query: CompiledQuery, group: str) -> list[str]:
    fields = query.obj.fields.values()
    if group == "NAME":
        return [f.name for f in fields if f.name_field or f.name in ("FirstName", "LastName")]
    if group == "EMAIL":
        return [f.name for f in fields if f.type == "email"]
    if group == "PHONE":
        return [f.name for f in fields if f.type == "phone"]
    return [f.name for f in fields if f.type in STRING_TYPES]


def _matcher(terms: str) -> Any:
    terms = re.sub(r"\\(.)", r"\1", terms).strip()
    phrases = re.findall(r'"([^"]+)"', terms)
    words = [w for w in re.sub(r'"[^"]*"', " ", terms).split()
             if w.upper() not in ("AND", "OR", "NOT")]
    if not phrases and not words:
        raise _malformed("search term must be longer than one character")
    if any(len(w.strip("*?")) < 2 for w in words):
        raise _malformed("search term must be longer than one character")
    patterns = [re.compile("^" + re.escape(w.lower()).replace(r"\*", r".*").replace(r"\?", ".")
                           + "$") for w in words]

    def matches(rec: Record, fields: list[str]) -> bool:
        texts = [str(rec[f]).lower() for f in fields if rec.get(f)]
        tokens = {t for text in texts for t in _tokens(text)}
        if not all(any(p.match(t) for t in tokens) for p in patterns):
            return False
        return all(any(phrase.lower() in text for text in texts) for phrase in phrases)

    return matches


def _tokens(text: str) -> set[str]:
    # An email is found by itself and by its parts (local part, domain, domain words).
    out: set[str] = set()
    for token in _WORD.findall(text):
        out.add(token.strip(".-"))
        out.update(part for part in re.split(r"[@.+-]", token) if part)
    return out
