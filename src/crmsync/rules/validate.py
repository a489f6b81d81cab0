"""Check a parsed rule file and turn it into a validated :class:`~crmsync.rules.tree.Tree`.

Two layers, all problems collected before anything is raised:

1. the JSON Schema (shipped as ``ruleset.schema.json``) for the file's overall shape, with its
   messages rewritten for people (unknown keys get a "did you mean");
2. semantic checks the schema cannot express: unknown facts and outputs, operator/type
   mismatches, outputs read before they are decided, duplicate ids, rules that can never
   fire, unsafe regexes, template placeholders that name nothing, cycles between named
   conditions.

Conditions are checked only by layer 2 (a failed ``oneOf`` says nothing useful), so schema
errors inside a condition are dropped in favour of the semantic message for the same spot.

The checker is assembled from one mixin per concern: :mod:`~crmsync.rules.validate_schema`
(layer 1), :mod:`~crmsync.rules.validate_conditions`, :mod:`~crmsync.rules.validate_decisions`
and :mod:`~crmsync.rules.validate_tests` (layer 2), with the file's declared facts and
outputs checked by :mod:`~crmsync.rules.validate_outputs`, over :mod:`~crmsync.rules.validate_base`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmsync.errors import Diagnostic
from crmsync.rules.jsonpos import SourceMap
from crmsync.rules.tree import Tree
from crmsync.rules.validate_base import (
    ALL_OPERATORS,
    BUILTIN_OUTPUTS,
    DEFAULT_TEST_NOW,
    OPERATORS_BY_KIND,
    did_you_mean,
    kind_word,
    parse_datetime,
)
from crmsync.rules.validate_conditions import ConditionChecks
from crmsync.rules.validate_decisions import DecisionChecks
from crmsync.rules.validate_outputs import OutputChecks
from crmsync.rules.validate_params import ParamChecks
from crmsync.rules.validate_schema import SchemaChecks, ruleset_schema
from crmsync.rules.validate_tests import TestChecks

__all__ = [
    "ALL_OPERATORS",
    "BUILTIN_OUTPUTS",
    "DEFAULT_TEST_NOW",
    "OPERATORS_BY_KIND",
    "check_document",
    "did_you_mean",
    "kind_word",
    "parse_datetime",
    "ruleset_schema",
]


class _Checker(SchemaChecks, ParamChecks, OutputChecks, ConditionChecks, DecisionChecks,
               TestChecks):
    """One validation pass over one document; collects diagnostics as it goes."""

    # -- driver ------------------------------------------------------------------------

    def run(self) -> Tree | None:
        doc = self.doc
        if not isinstance(doc, dict):
            self.error("", "a rule file is one JSON object ({ ... })")
            return None
        self._mark_condition_subtrees(doc)
        self._schema_errors(doc)
        self._lists(doc.get("lists"))
        self._params(doc.get("params"))
        self._declared_facts(doc.get("facts"))
        self._declared_outputs(doc.get("outputs"))
        self._declare_outputs(doc.get("decisions"))
        self._derived(doc.get("derived"))
        self._named_conditions(doc.get("conditions"))
        decisions = self._decisions(doc.get("decisions"))
        reason = self._reason(doc.get("reason"), decisions)
        tasks = self._tasks(doc.get("tasks"))
        self._unique_ids(decisions, tasks)
        self._check_declared_decided()
        tests = self._tests(doc.get("tests"), tasks)
        if self.diagnostics:
            return None
        version = doc.get("version")
        return Tree(
            version=version if isinstance(version, str) else "",
            conditions=self.conditions,
            derived=self.derived,
            decisions=tuple(decisions),
            tasks=tuple(tasks),
            reason=reason,
            tests=tuple(tests),
            facts=self.facts,
            facts_used=frozenset(self.facts_used),
            description=str(doc.get("description", "")),
            outputs=dict(self.declared_outputs),
            declared_facts=dict(self.declared_facts),
        )


def check_document(
    doc: Any, smap: SourceMap, filename: str, facts: Mapping[str, str]
) -> tuple[Tree | None, list[Diagnostic]]:
    """Validate a parsed rule file.

    Args:
        doc: The parsed JSON value.
        smap: Its source map, for locating problems.
        filename: How to name the file in diagnostics.
        facts: Known facts (name -> type): canonical plus a field map's custom facts.

    Returns:
        The validated tree (``None`` when there are problems) and every problem found,
        sorted by position.
    """
    checker = _Checker(doc, smap, filename, facts)
    try:
        tree = checker.run()
    except RecursionError:
        checker.error("", "the rule file nests too deeply to check")
        tree = None
    unique = {(d.line, d.col, d.pointer, d.message): d for d in checker.diagnostics}
    diagnostics = [unique[key] for key in sorted(unique)]
    return (tree if not diagnostics else None), diagnostics
