"""Load a rule file into a :class:`RuleSet`: parse, validate, compile once, evaluate many."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmsync.errors import Diagnostic, InvalidFileError
from crmsync.model import Decision
from crmsync.rules.compile import compile_tree
from crmsync.rules.compile_explain import compile_explain
from crmsync.rules.dates import add_business_days
from crmsync.rules.explain import Interpreter
from crmsync.rules.facts import (
    FACT_TYPES,
    NAME_PATTERN,
    domain_of_email,
    fact_catalogue,
    to_str,
)
from crmsync.rules.jsonpos import JSONPositionError, parse
from crmsync.rules.tree import OutputSpec, Tree
from crmsync.rules.validate import check_document

#: Largest rule file accepted, in bytes (5 MB, documented in rules/README.md). The default rules
#: are 25 kB; a file hundreds of times larger is a mistake, and parsing it would cost seconds
#: and gigabytes before the first useful error.
MAX_RULE_FILE_BYTES = 5_000_000


class RuleSet:
    """A validated, compiled rule file.

    Evaluation is a pure function of (rule set, facts, now): no I/O, no clock, no exceptions
    on odd data.

    Attributes:
        version: The file's declared ``version``.
        content_hash: SHA-256 of the file's exact text.
        facts_used: Fact names the rules read (connectors may fetch only these).
        outputs: Output names in decision order (``status``, ``miss_type``, ``score``, ...).
        declared_outputs: The custom outputs the file declares for the CRM (name -> spec);
            each decision carries their values in ``Decision.extra``.
        declared_facts: The custom facts the file declares it expects (name -> type).
        tree: The validated rule tree.
        source: The generated Python source of the evaluator (for the curious).
        filename: Where the rules came from.
    """

    def __init__(self, tree: Tree, *, content_hash: str, filename: str) -> None:
        self.tree = tree
        self.version = tree.version
        self.content_hash = content_hash
        self.filename = filename
        self.facts_used: frozenset[str] = tree.facts_used
        # email_domain is derived (DESIGN.md §2): inputs that give only the email still work.
        self._derives_domain = "email_domain" in tree.facts_used
        self.outputs: tuple[str, ...] = tuple(d.output for d in tree.decisions)
        self.declared_outputs: Mapping[str, OutputSpec] = dict(tree.outputs)
        self.declared_facts: Mapping[str, str] = dict(tree.declared_facts)
        compiled = compile_tree(tree, version=self.version, content_hash=content_hash)
        self._function = compiled.function
        self._coerced_function = compiled.coerced or compiled.function
        self.source = compiled.source
        explained = compile_explain(tree, version=self.version, content_hash=content_hash)
        if (explained.thresholds, explained.dues) != (compiled.thresholds, compiled.dues):
            raise AssertionError("the two evaluators disagree on the K layout")  # a bug of ours
        self._explain = explained.function
        self._thresholds = compiled.thresholds
        self._dues = compiled.dues
        # One attribute, replaced whole, so threads sharing a RuleSet never see a torn pair.
        self._cache: tuple[datetime | None, tuple[Any, ...]] = (None, ())

    def _constants_for(self, now: datetime) -> tuple[Any, ...]:
        """Per-``now`` constants: the clock, date thresholds and due dates (cached)."""
        cached_now, cached = self._cache
        if now is cached_now:
            return cached
        moment = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        constants = (
            moment,
            *(moment - span for span in self._thresholds),
            *(add_business_days(moment.date(), days) for days in self._dues),
        )
        self._cache = (now, constants)
        return constants

    def evaluate(
        self,
        facts: Mapping[str, Any],
        *,
        now: datetime,
        contact_id: str | None = None,
        explain: bool = False,
        coerced: bool = False,
    ) -> Decision:
        """Decide one contact.

        Args:
            facts: Canonical facts (missing keys and ``None`` are missing values; odd types
                are coerced or treated as missing, see :mod:`crmsync.rules.facts`).
            now: The run's clock (a naive value is taken as UTC).
            contact_id: The contact's id; defaults to ``facts["id"]``.
            explain: Attach the full trace (slower).
            coerced: The caller promises every fact already has its type, as
                :func:`crmsync.coerce.coerce` gives it (what a connector's field map hands a
                run): the per-fact type tests are skipped. A broken promise is not a crash (a
                value that cannot be compared falls back to the coercing interpreter), but can
                decide differently (``"yes"`` for a yes/no fact is then not true).

        Returns:
            The decision; ``status`` and ``miss_type`` are always from their closed sets.
        """
        if type(facts) is not dict and not isinstance(facts, Mapping):
            facts = {}
        cached_now, constants = self._cache
        if now is not cached_now:
            constants = self._constants_for(now)
        try:
            if explain:
                facts, contact_id = self._prepared(facts, contact_id)
                return self._explain(facts, constants, contact_id)
            # The compiled evaluators read the id and derive email_domain themselves.
            if coerced:
                return self._coerced_function(facts, constants, contact_id)
            return self._function(facts, constants, contact_id)
        except Exception:  # noqa: BLE001 - belt and braces: odd data must never stop a run
            facts, contact_id = self._prepared(facts, contact_id)
            return self._interpret(facts, constants, contact_id, explain=explain)

    def _prepared(self, facts: Mapping[str, Any],
                  contact_id: str | None) -> tuple[Mapping[str, Any], str]:
        """The facts with ``email_domain`` derived, and the contact id (for the explaining
        evaluator and the interpreter; the compiled evaluators do this inline)."""
        if contact_id is None:
            contact_id = to_str(facts.get("id")) or ""
        if self._derives_domain and facts.get("email_domain") is None:
            facts = with_email_domain(facts)
        return facts, contact_id

    def _interpret(self, facts: Mapping[str, Any], constants: tuple[Any, ...], contact_id: str,
                   *, explain: bool) -> Decision:
        spans = len(self._thresholds)
        interpreter = Interpreter(
            self.tree,
            constants[0],
            dict(zip(self._thresholds, constants[1 : 1 + spans], strict=True)),
            dict(zip(self._dues, constants[1 + spans :], strict=True)),
        )
        return interpreter.run(facts, contact_id, version=self.version,
                               content_hash=self.content_hash, explain=explain)

    def interpret(self, facts: Mapping[str, Any], *, now: datetime,
                  contact_id: str | None = None) -> Decision:
        """Decide one contact with the reference interpreter instead of the compiled code.

        Always gives the same decision as :meth:`evaluate`; used by tests and benchmarks.
        """
        if contact_id is None:
            contact_id = to_str(facts.get("id")) or ""
        if (self._derives_domain and isinstance(facts, Mapping)
                and facts.get("email_domain") is None):
            facts = with_email_domain(facts)
        return self._interpret(facts, self._constants_for(now), contact_id, explain=False)

    def __repr__(self) -> str:
        return f"RuleSet({self.filename!r}, version={self.version!r})"


def load_ruleset_text(
    text: str, *, filename: str = "<rules>", extra_facts: Mapping[str, str] | None = None
) -> RuleSet:
    """Parse, validate and compile a rule file's text.

    Args:
        text: The rule file's JSON text.
        filename: How to name the file in diagnostics.
        extra_facts: Custom facts a CRM field map declares (name -> type).

    Raises:
        InvalidFileError: Listing every problem, each located by line, column and pointer.
    """
    # Characters never outnumber UTF-8 bytes, so only a long text needs encoding to measure.
    if len(text) > MAX_RULE_FILE_BYTES or (
        len(text) * 4 > MAX_RULE_FILE_BYTES
        and len(text.encode("utf-8", "surrogatepass")) > MAX_RULE_FILE_BYTES
    ):
        raise InvalidFileError([_too_large(filename, len(text.encode("utf-8", "surrogatepass")))])
    problems = _check_extra_facts(extra_facts, filename)
    if problems:
        raise InvalidFileError(problems)
    try:
        doc, smap = parse(text)
    except JSONPositionError as error:
        raise InvalidFileError([Diagnostic(filename, error.line, error.col, error.pointer,
                                           f"invalid JSON: {error.msg}",
                                           error.hint)]) from None
    tree, diagnostics = check_document(doc, smap, filename, fact_catalogue(extra_facts))
    if tree is None:
        raise InvalidFileError(diagnostics)
    content_hash = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return RuleSet(tree, content_hash=content_hash, filename=filename)


def load_ruleset(
    path: str | Path, *, extra_facts: Mapping[str, str] | None = None
) -> RuleSet:
    """Read, validate and compile the rule file at ``path``.

    Raises:
        InvalidFileError: The file is unreadable, not UTF-8, or has rule problems.
    """
    filename = str(path)
    try:
        with open(path, "rb") as handle:
            # Never read more than the limit (+1 to know it is over): a 70 MB file, a FIFO or
            # /dev/zero is refused at once instead of costing seconds and gigabytes to parse.
            data = handle.read(MAX_RULE_FILE_BYTES + 1)
        if len(data) > MAX_RULE_FILE_BYTES:
            raise InvalidFileError([_too_large(filename, _size_of(path, len(data)))])
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise InvalidFileError([Diagnostic(filename, 1, 1, "",
                                           f"cannot read the rule file: {reason}")]) from None
    return load_ruleset_text(text, filename=filename, extra_facts=extra_facts)


def _size_of(path: str | Path, at_least: int) -> int:
    try:
        return max(Path(path).stat().st_size, at_least)
    except OSError:
        return at_least


def _too_large(filename: str, size: int) -> Diagnostic:
    size_text = f"{size / 1_000_000:.1f} MB" if size > MAX_RULE_FILE_BYTES else "over 5 MB"
    return Diagnostic(
        filename, 1, 1, "",
        f"the rule file is {size_text}; rule files are limited to "
        f"{MAX_RULE_FILE_BYTES // 1_000_000} MB",
        "keep long value lists short (a rule file is read by people), or check that this is "
        "the right file",
    )


def _check_extra_facts(extra: Mapping[str, str] | None, filename: str) -> list[Diagnostic]:
    problems = []
    for name, kind in (extra or {}).items():
        kind = {"float": "number", "date": "datetime"}.get(kind, kind)
        if not isinstance(name, str) or not NAME_PATTERN.match(name) or kind not in FACT_TYPES:
            problems.append(Diagnostic(
                filename, 1, 1, "",
                f"the field map declares custom fact {name!r} of type {kind!r}; facts need "
                f"lower_case names and one of the types {', '.join(FACT_TYPES)}",
            ))
    return problems


def with_email_domain(facts: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return ``facts`` with ``email_domain`` derived from ``email`` when it can be."""
    domain = domain_of_email(facts.get("email"))
    return {**facts, "email_domain": domain} if domain else facts
