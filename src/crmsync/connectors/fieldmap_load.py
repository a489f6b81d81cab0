"""Loading field map files: JSON Schema validation, located diagnostics, compilation.

A field map (``connectors/hubspot.json``, ``connectors/salesforce.json``) is validated against
the JSON Schema shipped with the package (``fieldmap.schema.json``); every problem is reported
with ``file:line:col``, its JSON pointer and a suggestion. The compiled
:class:`~crmsync.connectors.fieldmap.FieldMap` is what connectors read records through;
:func:`bind_rules` then checks it against what a rule file declares.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from crmsync.connectors.fieldmap import (
    DEAL_FACTS,
    PREVIOUS_OUTPUT_FACTS,
    CompanyMap,
    DealMap,
    FactSource,
    FieldMap,
    ObjectMap,
    OutputTarget,
    TaskMap,
)
from crmsync.errors import Diagnostic, InvalidFileError
from crmsync.model import CANONICAL_FACTS, OUTPUTS


def bind_rules(fieldmap: FieldMap, declared_outputs: Mapping[str, Any],
               declared_facts: Mapping[str, str]) -> FieldMap:
    """Check a field map against what a rule file declares; return it with typed outputs.

    Every declared custom output needs a CRM field (``outputs``; a misspelt one in the map is
    pointed out), and every fact the rule file expects must be provided, with a fitting type.
    The map's custom output targets take their type, allowed values and label from the
    declarations; those the rule file does not declare are left out of the returned map.

    Args:
        declared_outputs: The rule set's ``declared_outputs`` (name -> spec with ``kind``,
            ``values`` and ``label``).
        declared_facts: The rule set's ``declared_facts`` (name -> type).

    Raises:
        InvalidFileError: Listing every mismatch, located in the field map.
    """
    text = _read_quietly(fieldmap.path)
    problems: list[Diagnostic] = []
    outputs = dict(fieldmap.outputs)
    for name, target in fieldmap.outputs.items():
        if not target.custom:
            continue
        spec = declared_outputs.get(name)
        if spec is None:
            # Mapped for another rule file (the default rules' icp_tier, say): not read, not
            # written, not set up with this one.
            del outputs[name]
            continue
        # A collected list is written as one line of text: its values are checked by the
        # rule file, item by item, and the field is plain text rather than a picklist.
        outputs[name] = replace(target, kind="str" if spec.kind == "list" else spec.kind,
                                allowed=None if spec.kind == "list" else spec.values,
                                label=target.label or spec.label)
    spare = [name for name, target in fieldmap.outputs.items()
             if target.custom and name not in declared_outputs]
    for name in declared_outputs:
        if name in fieldmap.outputs:
            continue
        close = difflib.get_close_matches(name, spare, n=1)
        problems.append(_diagnostic(
            fieldmap.path, text, "/outputs",
            f"the rule file declares output {name!r}, which has no CRM field in "
            f"{fieldmap.path}",
            f"the map has {close[0]!r}: did you mean {name!r}?" if close else
            f"add \"{name}\": {{\"field\": \"...\"}} to \"outputs\", then run `crmsync "
            "setup` to create the field"))
    known = fieldmap.fact_types()
    mapped = {source.fact for obj in fieldmap.objects.values() for source in obj.sources}
    for name, kind in declared_facts.items():
        have = known.get(name)
        numeric = {have, kind} <= {"int", "number"}
        if have is None or (name not in CANONICAL_FACTS and name not in mapped):
            problems.append(_diagnostic(
                fieldmap.path, text, "/custom_facts",
                f"the rule file expects fact {name!r} ({kind}), which {fieldmap.path} does not "
                "provide", f"add \"custom_facts\": {{\"{name}\": {{\"type\": \"{kind}\"}}}} "
                "and map it to a CRM field under objects.*.facts"))
        elif have != kind and not numeric:
            problems.append(_diagnostic(
                fieldmap.path, text, f"/custom_facts/{name}",
                f"the rule file expects fact {name!r} as {kind}; {fieldmap.path} provides it as "
                f"{have}", "make the two types agree"))
    if problems:
        raise InvalidFileError(problems)
    return replace(fieldmap, outputs=outputs)


def _read_quietly(path: str) -> str:
    try:
        return Path(path).read_text("utf-8")
    except OSError:
        return ""


def fieldmap_schema() -> dict[str, Any]:
    """Return the JSON Schema of field map files."""
    text = resources.files("crmsync.connectors").joinpath("fieldmap.schema.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def load_fieldmap(path: str | Path) -> FieldMap:
    """Load, validate and compile a field map; raise InvalidFileError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise InvalidFileError(
            [Diagnostic(str(path), 1, 1, "", f"cannot read field map: {error.strerror}")]
        ) from None
    return parse_fieldmap(text, filename=str(path))


def parse_fieldmap(text: str, *, filename: str) -> FieldMap:
    """Validate and compile field map JSON text (see :func:`load_fieldmap`)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidFileError(
            [Diagnostic(filename, error.lineno, error.colno, "", f"invalid JSON: {error.msg}")]
        ) from None
    validator = jsonschema.Draft202012Validator(fieldmap_schema())
    problems = [
        _diagnostic(filename, text, "/" + "/".join(str(p) for p in err.absolute_path), err.message)
        for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if problems:
        raise InvalidFileError(problems)
    return _compile(doc, filename, text)


def _diagnostic(
    filename: str, text: str, pointer: str, message: str, suggestion: str | None = None
) -> Diagnostic:
    line, col = _locate(text, pointer)
    return Diagnostic(filename, line, col, pointer if pointer != "/" else "", message, suggestion)


def _locate(text: str, pointer: str) -> tuple[int, int]:
    """Best-effort line/column of the last key of a JSON pointer (the file's start otherwise)."""
    parts = [p for p in pointer.split("/") if p]
    offset = 0
    for part in parts:
        if part.isdigit():
            continue
        found = text.find(f'"{part}"', offset)
        if found < 0:
            break
        offset = found
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _compile(doc: Mapping[str, Any], filename: str, text: str) -> FieldMap:
    custom = {name: spec["type"] for name, spec in doc.get("custom_facts", {}).items()}
    known = {**CANONICAL_FACTS, **custom}
    problems: list[Diagnostic] = []
    objects: dict[str, ObjectMap] = {}
    for object_name, spec in doc["objects"].items():
        sources = []
        for fact, raw in spec["facts"].items():
            pointer = f"/objects/{object_name}/facts/{fact}"
            problem = _unreadable_fact(
                filename, text, pointer, fact, known,
                "remove it: deal facts come from the 'deals' section, previous outputs from "
                "'outputs'")
            if problem is not None:
                problems.append(problem)
                continue
            raw = {"field": raw} if isinstance(raw, str) else raw
            derive = raw.get("derive_from")
            if derive is not None and derive not in spec["facts"]:
                problems.append(_unknown(filename, text, pointer + "/derive_from",
                                         f"derives from unmapped fact {derive!r}", derive,
                                         spec["facts"]))
            sources.append(FactSource(fact=fact, kind=known[fact], field=raw.get("field"),
                                      derive_from=derive, transform=raw.get("transform"),
                                      values=raw.get("values")))
        # Derived facts read other facts, so they run after every plain field.
        sources.sort(key=lambda s: s.derive_from is not None)
        objects[object_name] = ObjectMap(object_name, spec["modified_field"],
                                         spec.get("owner_field"), tuple(sources))
    outputs = {}
    for output, raw in doc["outputs"].items():
        # A name crmsync does not own is a custom output a rule file declares; whether the
        # rule file in use declares it is checked when the two meet (bind_rules).
        outputs[output] = OutputTarget(output, raw["field"], OUTPUTS.get(output, "str"),
                                       raw.get("values"), custom=output not in OUTPUTS,
                                       label=raw.get("label", ""))
    missing = sorted(set(OUTPUTS) - set(doc["outputs"]))
    if missing:
        problems.append(_diagnostic(filename, text, "/outputs",
                                    f"outputs {', '.join(missing)} have no CRM field",
                                    "map every output so results are stored and diffs work"))
    companies = None
    if "companies" in doc and doc["crm"] != "hubspot":
        problems.append(_diagnostic(filename, text, "/companies",
                                    "'companies' is read from HubSpot only",
                                    "in Salesforce, map Account fields by name (Account.Industry)"))
    elif "companies" in doc:
        company_sources = []
        for fact, raw in doc["companies"]["facts"].items():
            pointer = f"/companies/facts/{fact}"
            problem = _unreadable_fact(filename, text, pointer, fact, known)
            if problem is not None:
                problems.append(problem)
                continue
            raw = {"field": raw} if isinstance(raw, str) else raw
            company_sources.append(FactSource(fact=fact, kind=known[fact], field=raw["field"],
                                              transform=raw.get("transform"),
                                              values=raw.get("values")))
        companies = CompanyMap(doc["companies"]["object"], tuple(company_sources))
    if problems:
        raise InvalidFileError(problems)
    deals = None
    if "deals" in doc:
        d = doc["deals"]
        deals = DealMap(d["object"], d["fields"], frozenset(d["won_stages"]),
                        frozenset(d["lost_stages"]))
    t = doc["tasks"]
    tasks = TaskMap(t["object"], t["fields"], t["priority_values"], t["open_status"],
                    t["closed_status"], t.get("key_field"))
    return FieldMap(doc["crm"], filename, objects, outputs, deals, tasks, custom, companies)


def _unreadable_fact(filename: str, text: str, pointer: str, fact: str,
                     known: Mapping[str, Any], hint: str | None = None) -> Diagnostic | None:
    """The problem with reading ``fact`` from a field (unknown, or computed by crmsync), if any."""
    if fact not in known:
        return _unknown(filename, text, pointer, f"unknown fact {fact!r}", fact, known)
    if fact in DEAL_FACTS or fact in PREVIOUS_OUTPUT_FACTS:
        return _diagnostic(filename, text, pointer,
                           f"fact {fact!r} is computed by crmsync, not read", hint)
    return None


def _unknown(
    filename: str, text: str, pointer: str, message: str, name: str, known: Mapping[str, Any]
) -> Diagnostic:
    close = difflib.get_close_matches(name, list(known), n=1)
    return _diagnostic(filename, text, pointer, message,
                       f"did you mean {close[0]!r}?" if close else None)
