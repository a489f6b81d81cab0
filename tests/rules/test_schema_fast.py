"""The fast schema check never says "valid" where jsonschema finds an error.

``crmsync.rules.schema_fast.conforms`` lets a valid rule file skip importing jsonschema; the
located messages for a broken file still come from jsonschema (``test_validation.py``). Here
both judge the shipped rule file and a seeded sample of mutations of it: every kind of
wrong value at every depth, unknown and missing keys, empty and long lists.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from crmsync.rules.schema_fast import conforms
from crmsync.rules.validate import ruleset_schema

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = json.loads((ROOT / "rules" / "default.json").read_text("utf-8"))
REPLACEMENTS: list[Any] = [None, True, False, 0, 1, -3, 1.5, 2.0, "", "x", "Bad Name",
                           "a" * 70, [], [1], {}, {"zzz": 1}]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*path, index))


def _mutants(seed: int, count: int) -> Iterator[Any]:
    rng = random.Random(seed)
    paths = list(_paths(DEFAULT))
    for _ in range(count):
        doc = copy.deepcopy(DEFAULT)
        path = rng.choice(paths[1:])
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        action = rng.random()
        if action < 0.6:
            parent[last] = copy.deepcopy(rng.choice(REPLACEMENTS))
        elif action < 0.75:
            del parent[last]
        elif action < 0.9 and isinstance(parent[last], dict):
            parent[last][rng.choice(["zzz", "when", "id", "then", "value"])] = rng.choice(
                REPLACEMENTS)
        elif isinstance(parent[last], list):
            parent[last] = parent[last] * 40 if rng.random() < 0.5 else []
        else:
            parent[last] = str(parent[last])
        yield doc


def _jsonschema_valid(doc: Any) -> bool:
    return not any(True for _ in jsonschema.Draft202012Validator(ruleset_schema())
                   .iter_errors(doc))


def test_the_shipped_rule_file_conforms_without_jsonschema() -> None:
    assert _jsonschema_valid(DEFAULT)
    assert conforms(DEFAULT, ruleset_schema())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mutations_are_never_waved_through(seed: int) -> None:
    judged = {"both valid": 0, "both invalid": 0, "fast unsure": 0}
    for doc in _mutants(seed, 150):
        fast, full = conforms(doc, ruleset_schema()), _jsonschema_valid(doc)
        assert not (fast and not full), json.dumps(doc)[:400]
        judged["both valid" if fast else "both invalid" if not full else "fast unsure"] += 1
    # The sample exercises both answers, and "unsure" (a wasted jsonschema import) is rare.
    assert judged["both valid"] > 10 and judged["both invalid"] > 10, judged
    assert judged["fast unsure"] <= 15, judged


def test_undecidable_keywords_defer_to_jsonschema() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}},
              "if": {"required": ["n"]}, "then": {"required": ["m"]}}
    assert not conforms({"n": 1}, schema)  # "if" is unknown here: not a yes
    assert not conforms({"n": 1.0}, {"type": "integer"})  # 2020-12 integer floats: ask
    assert conforms({"n": 1}, {"type": "object", "properties": {"n": {"type": "integer"}}})
    assert not conforms({"n": True}, {"properties": {"n": {"type": "integer"}}})
    assert not conforms(1, {"const": True}) and conforms(True, {"const": True})
