"""A tokenizer and recursive-descent parser for the SOQL subset a sync sends (§2.4).

Grammar (keywords case-insensitive)::

    query      := SELECT select_list FROM ident [WHERE condition] [GROUP BY path {, path}]
                  [ORDER BY order_item {, order_item}] [LIMIT int] [OFFSET int]
    select_list:= COUNT() | item {, item}
    item       := path | func(path) [alias] | TOLABEL(path) [alias]
                | FIELDS(STANDARD|CUSTOM|ALL) | ( query )          -- child relationship query
    func       := COUNT | COUNT_DISTINCT | MAX | MIN | SUM | AVG
    path       := ident {. ident}
    condition  := unary {AND unary} | unary {OR unary}      -- mixing needs parentheses
    unary      := NOT unary | ( condition ) | comparison
    comparison := path op value | path [NOT] IN ( value {, value} ) | path LIKE string
                | path [NOT] IN ( query )                           -- semi-join / anti-join
    value      := string | number | true | false | null | date | datetime
                | date literal (TODAY, NEXT_WEEK, LAST_N_DAYS:n, THIS_FISCAL_YEAR...: .dates)
    order_item := path [ASC|DESC] [NULLS FIRST|LAST]

Parsing knows no schema: :mod:`.query` resolves names and types and raises the
``INVALID_FIELD``-style errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from crmsync.sandbox.salesforce import dates
from crmsync.sandbox.salesforce.values import parse_datetime


class SoqlError(Exception):
    """A query Salesforce would refuse; ``code`` is its ``errorCode``."""

    def __init__(self, message: str, code: str = "MALFORMED_QUERY") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Token:
    """One lexical token with its position (for error messages)."""

    kind: str  # IDENT STRING NUMBER DATE DATETIME OP ( ) , . : EOF
    text: str
    value: Any
    pos: int


@dataclass(frozen=True)
class Literal:
    """A literal value: ``kind`` is string, number, boolean, null, date, datetime or relative."""

    kind: str
    value: Any


@dataclass(frozen=True)
class RelativeDate:
    """A date literal such as ``TODAY`` or ``LAST_N_DAYS:30``."""

    name: str
    n: int = 0


@dataclass(frozen=True)
class Path:
    """A field reference, possibly through parents (``Account.Name``)."""

    parts: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.parts)


#: Aggregate functions a select list may call.
AGGREGATES = ("COUNT", "COUNT_DISTINCT", "MAX", "MIN", "SUM", "AVG")


@dataclass(frozen=True)
class Aggregate:
    """``COUNT(path)``, ``MAX(path)``... in a select list (``path`` None for ``COUNT()``)."""

    func: str
    path: Path | None
    alias: str | None = None


@dataclass(frozen=True)
class Label:
    """``toLabel(path)`` in a select list: the picklist value's label."""

    path: Path
    alias: str | None = None


@dataclass(frozen=True)
class Fields:
    """``FIELDS(STANDARD)``, ``FIELDS(CUSTOM)`` or ``FIELDS(ALL)``."""

    which: str


@dataclass(frozen=True)
class SubQuery:
    """A nested ``(SELECT ...)``: a child relationship query in a select list, or the right
    side of a semi-join (``Id IN (SELECT WhoId FROM Task)``)."""

    query: Query


@dataclass(frozen=True)
class Comparison:
    """``path op value``; for IN/NOT IN ``value`` is a tuple of literals or a subquery."""

    path: Path
    op: str  # = != < <= > >= LIKE IN NOT IN
    value: Literal | tuple[Literal, ...] | SubQuery


@dataclass(frozen=True)
class BoolOp:
    """AND / OR over two or more conditions."""

    op: str
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    """NOT condition."""

    item: Any


@dataclass(frozen=True)
class OrderItem:
    """One ORDER BY key."""

    path: Path
    descending: bool = False
    nulls_last: bool | None = None  # None: the default for the direction


@dataclass
class Query:
    """A parsed SOQL statement."""

    select: list[Any]  # Path | Aggregate | Label | Fields | SubQuery
    sobject: str
    where: Any = None
    group_by: list[Path] = field(default_factory=list)
    order_by: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None

    @property
    def count_only(self) -> bool:
        """Whether this is ``SELECT COUNT() FROM ...``."""
        return len(self.select) == 1 and isinstance(self.select[0], Aggregate) and (
            self.select[0].path is None
        )


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\dT])
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[(),.:])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"',
            "\\": "\\"}
_RESERVED = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "ORDER", "BY", "LIMIT", "OFFSET",
             "GROUP", "IN", "LIKE", "NULL", "TRUE", "FALSE", "ASC", "DESC", "NULLS", "FIRST",
             "LAST"}


def tokenize(text: str) -> list[Token]:
    """Split SOQL into tokens; raise :class:`SoqlError` at the first character that fits none."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            shown = text[pos : pos + 10].split()[0]
            raise SoqlError(_where(text, pos, f"unexpected token: '{shown}'"))
        kind = m.lastgroup or ""
        raw = m.group()
        if kind == "string":
            tokens.append(Token("STRING", raw, _unescape(raw[1:-1], text, pos), pos))
        elif kind == "number":
            number = float(raw) if "." in raw else int(raw)
            tokens.append(Token("NUMBER", raw, number, pos))
        elif kind == "date":
            try:
                tokens.append(Token("DATE", raw, date.fromisoformat(raw), pos))
            except ValueError:
                raise SoqlError(_where(text, pos, f"invalid date: {raw}")) from None
        elif kind == "datetime":
            moment = parse_datetime(raw)
            if moment is None:
                raise SoqlError(_where(text, pos, f"invalid datetime: {raw}"))
            tokens.append(Token("DATETIME", raw, moment, pos))
        elif kind == "op":
            tokens.append(Token("OP", raw, "!=" if raw == "<>" else raw, pos))
        elif kind == "ident":
            tokens.append(Token("IDENT", raw, raw.upper(), pos))
        elif kind == "punct":
            tokens.append(Token(raw, raw, raw, pos))
        pos = m.end()
    tokens.append(Token("EOF", "", None, len(text)))
    return tokens


def parse(text: str) -> Query:
    """Parse one SOQL statement."""
    return _Parser(text).query()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # -- helpers -----------------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_kw(self, *words: str) -> bool:
        return self.tok.kind == "IDENT" and self.tok.value in words

    def expect_kw(self, word: str) -> None:
        if not self.is_kw(word):
            self.fail()
        self.advance()

    def expect(self, kind: str) -> Token:
        if self.tok.kind != kind:
            self.fail()
        return self.advance()

    def fail(self, message: str | None = None) -> None:
        tok = self.tok
        shown = "EOF" if tok.kind == "EOF" else tok.text
        raise SoqlError(_where(self.text, tok.pos, message or f"unexpected token: '{shown}'"))

    # -- grammar -----------------------------------------------------------------------------

    def query(self) -> Query:
        query = self.query_body()
        if self.tok.kind != "EOF":
            self.fail()
        return query

    def subquery(self) -> SubQuery:
        """``( SELECT ... )`` with the opening parenthesis already read."""
        query = self.query_body()
        self.expect(")")
        return SubQuery(query)

    def query_body(self) -> Query:
        self.expect_kw("SELECT")
        select = self.select_list()
        self.expect_kw("FROM")
        sobject = self.ident()
        query = Query(select=select, sobject=sobject)
        if self.is_kw("WHERE"):
            self.advance()
            query.where = self.condition()
        if self.is_kw("GROUP"):
            self.advance()
            self.expect_kw("BY")
            query.group_by.append(self.path())
            while self.tok.kind == ",":
                self.advance()
                query.group_by.append(self.path())
        if self.is_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            query.order_by.append(self.order_item())
            while self.tok.kind == ",":
                self.advance()
                query.order_by.append(self.order_item())
        if self.is_kw("LIMIT"):
            self.advance()
            query.limit = self.non_negative_int()
        if self.is_kw("OFFSET"):
            self.advance()
            query.offset = self.non_negative_int()
            if query.offset > 2000:
                raise SoqlError("Maximum SOQL offset allowed is 2000", "NUMBER_OUTSIDE_VALID_RANGE")
        return query

    def non_negative_int(self) -> int:
        tok = self.expect("NUMBER")
        if not isinstance(tok.value, int) or tok.value < 0:
            self.i -= 1
            self.fail()
        return int(tok.value)

    def ident(self) -> str:
        tok = self.expect("IDENT")
        return tok.text

    def path(self) -> Path:
        if self.is_kw(*_RESERVED - {"FIRST", "LAST"}):
            self.fail()
        parts = [self.ident()]
        while self.tok.kind == ".":
            self.advance()
            parts.append(self.ident())
        return Path(tuple(parts))

    def select_list(self) -> list[Any]:
        items: list[Any] = [self.select_item()]
        while self.tok.kind == ",":
            self.advance()
            items.append(self.select_item())
        if any(isinstance(i, Aggregate) and i.path is None for i in items) and len(items) > 1:
            raise SoqlError("COUNT() must be the only element in the SELECT list")
        return items

    def select_item(self) -> Any:
        if self.tok.kind == "(":
            self.advance()
            return self.subquery()
        calls = self.tokens[self.i + 1].kind == "("
        if calls and self.is_kw("FIELDS"):
            self.advance()
            self.advance()
            if not self.is_kw("STANDARD", "CUSTOM", "ALL"):
                self.fail()
            which = self.advance().value
            self.expect(")")
            return Fields(which)
        if calls and self.is_kw("TOLABEL"):
            self.advance()
            self.advance()
            inner = self.path()
            self.expect(")")
            alias = None
            if self.tok.kind == "IDENT" and not self.is_kw("FROM"):
                alias = self.ident()
            return Label(inner, alias)
        if self.is_kw(*AGGREGATES) and self.tokens[self.i + 1].kind == "(":
            func = self.advance().value
            self.advance()
            inner = None if self.tok.kind == ")" and func == "COUNT" else self.path()
            self.expect(")")
            alias = None
            if inner is not None and self.tok.kind == "IDENT" and not self.is_kw("FROM"):
                alias = self.ident()
            return Aggregate(func, inner, alias)
        return self.path()

    def order_item(self) -> OrderItem:
        path = self.path()
        descending = False
        nulls_last: bool | None = None
        if self.is_kw("ASC", "DESC"):
            descending = self.advance().value == "DESC"
        if self.is_kw("NULLS"):
            self.advance()
            if not self.is_kw("FIRST", "LAST"):
                self.fail()
            nulls_last = self.advance().value == "LAST"
        return OrderItem(path, descending, nulls_last)

    def condition(self) -> Any:
        items = [self.unary()]
        joiner: str | None = None
        while self.is_kw("AND", "OR"):
            word = self.advance().value
            if joiner is not None and word != joiner:
                self.i -= 1
                self.fail()
            joiner = word
            items.append(self.unary())
        return items[0] if joiner is None else BoolOp(joiner, tuple(items))

    def unary(self) -> Any:
        if self.is_kw("NOT"):
            self.advance()
            return Not(self.unary())
        if self.tok.kind == "(":
            self.advance()
            inner = self.condition()
            self.expect(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        path = self.path()
        if self.tok.kind == "OP":
            op = self.advance().value
            return Comparison(path, op, self.value())
        if self.is_kw("LIKE"):
            self.advance()
            value = self.value()
            if value.kind != "string":
                self.i -= 1
                self.fail("LIKE needs a string")
            return Comparison(path, "LIKE", value)
        negate = False
        if self.is_kw("NOT"):
            self.advance()
            negate = True
        if self.is_kw("IN"):
            self.advance()
            self.expect("(")
            if self.is_kw("SELECT"):
                return Comparison(path, "NOT IN" if negate else "IN", self.subquery())
            values = [self.value()]
            while self.tok.kind == ",":
                self.advance()
                values.append(self.value())
            self.expect(")")
            return Comparison(path, "NOT IN" if negate else "IN", tuple(values))
        self.fail()
        raise AssertionError("unreachable")

    def value(self) -> Literal:
        tok = self.tok
        if tok.kind == "STRING":
            self.advance()
            return Literal("string", tok.value)
        if tok.kind == "NUMBER":
            self.advance()
            return Literal("number", tok.value)
        if tok.kind == "DATE":
            self.advance()
            return Literal("date", tok.value)
        if tok.kind == "DATETIME":
            self.advance()
            return Literal("datetime", tok.value)
        if tok.kind == "IDENT":
            word = tok.value
            if word in ("TRUE", "FALSE"):
                self.advance()
                return Literal("boolean", word == "TRUE")
            if word == "NULL":
                self.advance()
                return Literal("null", None)
            if dates.is_literal(word):
                self.advance()
                return Literal("relative", RelativeDate(word))
            if dates.takes_n(word):
                self.advance()
                self.expect(":")
                n = self.non_negative_int()
                return Literal("relative", RelativeDate(word, n))
        self.fail()
        raise AssertionError("unreachable")


def _unescape(body: str, text: str, pos: int) -> str:
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in ("%", "_"):
                out.append("\\" + nxt)  # kept escaped for LIKE patterns
            else:
                raise SoqlError(_where(text, pos, "Invalid string literal: bad escape sequence"))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _where(text: str, pos: int, message: str) -> str:
    row = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"\n{text}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{message}"
