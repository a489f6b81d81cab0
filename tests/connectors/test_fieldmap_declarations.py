"""Issue 11 §5: a field map meets the rule file's declared outputs and facts at run start.

``bind_rules`` types the map's custom output targets from the declarations, leaves out those
the rule file does not declare (one map serves several rule files), and reports a declared
output or fact the map does not provide, located in the map, with what to add.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crmsync.connectors.fieldmap_load import bind_rules, load_fieldmap
from crmsync.errors import InvalidFileError
from crmsync.rules.tree import OutputSpec

ROOT = Path(__file__).resolve().parents[2]


def _map(tmp_path: Path, *, outputs: dict[str, Any] | None = None,
         custom_facts: dict[str, Any] | None = None, facts: dict[str, str] | None = None) -> Any:
    doc = json.loads((ROOT / "connectors" / "salesforce.json").read_text("utf-8"))
    doc.pop("$schema", None)
    doc["outputs"].update(outputs or {})
    if custom_facts:
        doc["custom_facts"] = custom_facts
        for obj in doc["objects"].values():
            obj["facts"].update(facts or {})
    path = tmp_path / "map.json"
    path.write_text(json.dumps(doc, indent=2), "utf-8")
    return load_fieldmap(path)


def _spec(name: str, kind: str, values: tuple[str, ...] | None = None) -> OutputSpec:
    return OutputSpec(name, kind, values, name.replace("_", " ").capitalize(), f"/outputs/{name}")


def test_declared_outputs_are_typed_and_undeclared_custom_ones_left_out(tmp_path: Path) -> None:
    fieldmap = _map(tmp_path, outputs={"seats": {"field": "Seats__c"},
                                       "next_step": {"field": "Next_Step__c"}})
    bound = bind_rules(fieldmap, {"icp_tier": _spec("icp_tier", "str", ("A", "B")),
                                  "seats": _spec("seats", "int")}, {})
    assert "next_step" not in bound.outputs and "next_step" in fieldmap.outputs
    tier, seats = bound.outputs["icp_tier"], bound.outputs["seats"]
    assert (tier.custom, tier.kind, tier.allowed, tier.label) == (True, "str", ("A", "B"),
                                                                  "ICP tier")
    assert (seats.kind, seats.allowed, seats.label) == ("int", None, "Seats")
    assert not bound.outputs["status"].custom
    # A collected list is text in the CRM, never a picklist of its items.
    listed = bind_rules(fieldmap, {"icp_tier": _spec("icp_tier", "list", ("A", "B"))}, {})
    assert (listed.outputs["icp_tier"].kind, listed.outputs["icp_tier"].allowed) == ("str", None)


def test_a_declared_output_the_map_lacks_is_located_with_a_did_you_mean(tmp_path: Path) -> None:
    fieldmap = _map(tmp_path, outputs={"next_stpe": {"field": "Next_Step__c"}})
    with pytest.raises(InvalidFileError) as caught:
        bind_rules(fieldmap, {"icp_tier": _spec("icp_tier", "str"),
                              "next_step": _spec("next_step", "str")}, {})
    [problem] = caught.value.diagnostics
    assert problem.file == fieldmap.path and problem.pointer == "/outputs"
    assert problem.message.startswith("the rule file declares output 'next_step'")
    assert problem.suggestion == "the map has 'next_stpe': did you mean 'next_step'?"
    text = Path(fieldmap.path).read_text("utf-8").splitlines()
    assert '"outputs"' in text[problem.line - 1]


@pytest.mark.parametrize(("declared", "provided", "fragment"), [
    ({"nps": "number"}, None, "expects fact 'nps' (number), which"),
    ({"nps": "str"}, {"nps": {"type": "number"}}, "expects fact 'nps' as str"),
])
def test_a_declared_fact_the_map_does_not_provide_stops_the_run(
    tmp_path: Path, declared: dict[str, str], provided: dict[str, Any] | None, fragment: str
) -> None:
    fieldmap = _map(tmp_path, custom_facts=provided, facts={"nps": "NPS__c"})
    with pytest.raises(InvalidFileError) as caught:
        bind_rules(fieldmap, {}, declared)
    [problem] = caught.value.diagnostics
    assert fragment in problem.message and problem.pointer.startswith("/custom_facts")


def test_provided_facts_pass_and_whole_numbers_count_as_numbers(tmp_path: Path) -> None:
    fieldmap = _map(tmp_path, custom_facts={"nps": {"type": "int"}}, facts={"nps": "NPS__c"})
    bind_rules(fieldmap, {}, {"nps": "number", "employees": "int"})
    # Declared but mapped under no object: not provided.
    unmapped = _map(tmp_path, custom_facts={"nps": {"type": "int"}})
    with pytest.raises(InvalidFileError):
        bind_rules(unmapped, {}, {"nps": "int"})
