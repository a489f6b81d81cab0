"""Issue 11 §5: a rule file's declared outputs reach the CRM.

A rule file declares ``engagement_tier`` (text, values A/B/C: a trial, a demo request,
neither; simple enough for the test to work out from the raw CRM fields on its own); the
field map names its CRM field; ``crmsync setup`` creates it as a picklist of those values; a
run writes it with the same minimal-diff and journal guarantees as crmsync's own outputs (a
re-run writes nothing, undo puts it back). Everything is read back through the real SDKs
against the sandbox CRMs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.coerce import coerce
from crmsync.config import load_settings
from crmsync.errors import ExitCode, InvalidFileError
from crmsync.undo import undo_run
from crmsync.wiring import load_parts

from .conftest import ROOT, Crm

pytestmark = pytest.mark.filterwarnings(
    "ignore:The 'initial' parameter is deprecated:DeprecationWarning")

#: The CRM field each field map gives the custom output, and the raw trial/demo fields the
#: test decides the expected tier from on its own.
FIELD = {"hubspot": "crmsync_engagement_tier", "salesforce": "Crmsync_Engagement_Tier__c"}
RAW = {"hubspot": ("trial_signup", "demo_requested"),
       "salesforce": ("Trial_Signup__c", "Demo_Requested__c")}
TIERS = ["A", "B", "C"]


def _tier_rules(tmp: Path, *, declared: bool = True) -> Path:
    """The default rules plus a declared ``engagement_tier``: A on a trial, B on a demo, else C."""
    doc = json.loads((ROOT / "rules/default.json").read_text("utf-8"))
    if declared:
        doc.setdefault("outputs", {})["engagement_tier"] = {
            "type": "str", "values": TIERS, "label": "Engagement tier"}
    doc["decisions"].append({
        "output": "engagement_tier", "hit": "first", "default": "C",
        "default_because": "no trial or demo",
        "rules": [
            {"id": "tier_trial", "when": {"fact": "trial_signup", "is": True}, "then": "A",
             "because": "trial"},
            {"id": "tier_demo", "when": {"fact": "demo_requested", "is": True}, "then": "B",
             "because": "demo"},
        ],
    })
    path = tmp / "tiers.json"
    path.write_text(json.dumps(doc, indent=2), "utf-8")
    return path


def _tier_map(crm: str, tmp: Path, *, field: str | None = None) -> Path:
    doc = json.loads((ROOT / f"connectors/{crm}.json").read_text("utf-8"))
    doc.pop("$schema", None)
    doc["outputs"]["engagement_tier"] = {"field": field or FIELD[crm]}
    path = tmp / f"{crm}-map.json"
    path.write_text(json.dumps(doc, indent=2), "utf-8")
    return path


def _configure(crm: Crm, rules: Path, field_map: Path) -> None:
    text = crm.config.read_text("utf-8")
    start, end = text.index("[rules]"), text.index("[state]")
    text = text[:start] + f'[rules]\npath = "{rules.as_posix()}"\n' + text[end:]
    text = text.replace("[crm]\n", f'[crm]\nfield_map = "{field_map.as_posix()}"\n', 1)
    crm.config.write_text(text, "utf-8")


def _sdk(crm: Crm) -> Any:
    if crm.crm == "hubspot":
        from hubspot import HubSpot

        return HubSpot(access_token=crm.server.token, host=crm.server.base_url)
    from simple_salesforce import Salesforce

    from crmsync.connectors.transport import salesforce_session

    session, instance_url = salesforce_session(crm.server.base_url)
    return Salesforce(instance_url=instance_url, session_id=crm.server.token, session=session,
                      version="59.0")


def _read_back(crm: Crm) -> dict[str, tuple[Any, str]]:
    """Every contact's stored tier and the tier its raw trial/demo fields call for."""
    sdk, (trial, demo) = _sdk(crm), RAW[crm.crm]
    rows: list[dict[str, Any]] = []
    if crm.crm == "hubspot":
        for page in sdk.crm.contacts.get_all(properties=[FIELD["hubspot"], trial, demo]):
            rows.append({"id": page.id, **page.properties})
    else:
        for obj in ("Lead", "Contact"):
            answer = sdk.query_all(f"SELECT Id, {FIELD['salesforce']}, {trial}, {demo} "
                                   f"FROM {obj}")
            rows.extend({"id": r["Id"], **r} for r in answer["records"])
    expected = {}
    for row in rows:
        want = ("A" if coerce(row.get(trial), "bool") else
                "B" if coerce(row.get(demo), "bool") else "C")
        expected[row["id"]] = (row.get(FIELD[crm.crm]), want)
    return expected


def _picklist(crm: Crm) -> list[str]:
    sdk = _sdk(crm)
    if crm.crm == "hubspot":
        prop = sdk.crm.properties.core_api.get_by_name("contacts", FIELD["hubspot"])
        assert prop.type == "enumeration" and prop.label == "Engagement tier"
        return [option.value for option in prop.options]
    values: list[str] = []
    for obj in ("Lead", "Contact"):
        [described] = [f for f in getattr(sdk, obj).describe()["fields"]
                       if f["name"] == FIELD["salesforce"]]
        assert described["type"] == "picklist" and described["restrictedPicklist"]
        values = [v["value"] for v in described["picklistValues"]]
    return values


def test_a_declared_output_is_set_up_written_kept_and_undone(crm: Crm, tmp_path: Path) -> None:
    _configure(crm, _tier_rules(tmp_path), _tier_map(crm.crm, tmp_path))
    crm.setup()
    assert _picklist(crm) == TIERS

    first = crm.run(full=True)
    assert first.exit_code == ExitCode.OK, first.error
    stored = _read_back(crm)
    assert stored and all(have == want for have, want in stored.values()), [
        (cid, pair) for cid, pair in stored.items() if pair[0] != pair[1]][:5]
    assert {want for _, want in stored.values()} == set(TIERS), "the seed has every tier"

    again = crm.run(full=True)
    assert again.exit_code == ExitCode.OK, again.error
    assert again.counts["field_writes"] == 0, again.counts

    # A rep's edit moves one C contact to A; undoing that run puts C back.
    target = next(cid for cid, (have, _) in stored.items() if have == "C")
    crm.edit(target, crm.shape["edit_hot"])
    preview = crm.run(dry_run=True)
    assert preview.changes["engagement_tier"] == 1, preview.changes
    planned = CliRunner().invoke(main, ["plan", "--config", str(crm.config)])
    assert planned.exit_code == 0, planned.output
    assert "engagement_tier 1" in planned.output
    moved = crm.run()
    assert moved.exit_code == ExitCode.OK, moved.error
    assert _read_back(crm)[target] == ("A", "A")
    parts = load_parts(load_settings(crm.config, env={}))
    try:
        result = undo_run(parts.connector, parts.store, moved.run_id)
    finally:
        parts.close()
    assert result.restored >= 1 and result.failed == 0, result
    assert _read_back(crm)[target][0] == "C"


def test_a_run_stops_at_its_start_when_the_field_map_lacks_a_declared_output(
    crm: Crm, tmp_path: Path
) -> None:
    # The map names the field under a misspelt output: the run says which, before any call.
    doc = json.loads(_tier_map(crm.crm, tmp_path).read_text("utf-8"))
    doc["outputs"]["engagement_teir"] = doc["outputs"].pop("engagement_tier")
    field_map = tmp_path / "typo.json"
    field_map.write_text(json.dumps(doc, indent=2), "utf-8")
    _configure(crm, _tier_rules(tmp_path), field_map)
    with pytest.raises(InvalidFileError) as caught:
        load_parts(load_settings(crm.config, env={}))
    [problem] = caught.value.diagnostics
    assert problem.file == str(field_map) and problem.pointer == "/outputs"
    assert "engagement_tier" in problem.message and "engagement_teir" in (problem.suggestion or "")

    answer = CliRunner().invoke(main, ["plan", "--config", str(crm.config)])
    assert answer.exit_code == 2, answer.output
    assert f"{field_map}:" in answer.output and "Traceback" not in answer.output


def test_a_field_map_that_does_not_provide_a_declared_fact_stops_the_run(
    crm: Crm, tmp_path: Path
) -> None:
    doc = json.loads((ROOT / "rules/default.json").read_text("utf-8"))
    doc["facts"] = {"nps": "number"}
    doc["decisions"][-1]["rules"].append(
        {"id": "score_promoter", "when": {"fact": "nps", "at_least": 9}, "add": 5,
         "because": "promoter"})
    rules = tmp_path / "nps.json"
    rules.write_text(json.dumps(doc, indent=2), "utf-8")
    _configure(crm, rules, _tier_map(crm.crm, tmp_path))
    with pytest.raises(InvalidFileError) as caught:
        load_parts(load_settings(crm.config, env={}))
    [problem] = caught.value.diagnostics
    assert problem.pointer == "/custom_facts" and "'nps'" in problem.message
    assert '"nps": {"type": "number"}' in (problem.suggestion or "")


def test_setup_gives_each_declared_type_its_field_and_a_run_fills_it(
    crm: Crm, tmp_path: Path
) -> None:
    doc = json.loads((ROOT / "rules/default.json").read_text("utf-8"))
    doc["outputs"].update({
        "engagement_points": {"type": "int"}, "hot": {"type": "bool"},
        "signals_seen": {"type": "list", "label": "Signals seen"}})
    doc["decisions"] += [
        {"output": "engagement_points", "hit": "sum", "rules": [
            {"id": "pts_trial", "when": {"fact": "trial_signup", "is": True}, "add": 7,
             "because": "trial"}]},
        {"output": "hot", "hit": "first", "default": False, "rules": [
            {"id": "hot_trial", "when": {"fact": "trial_signup", "is": True}, "then": True,
             "because": "trial"}]},
        {"output": "signals_seen", "hit": "collect", "rules": [
            {"id": "seen_trial", "when": {"fact": "trial_signup", "is": True}, "then": "trial",
             "because": "trial"},
            {"id": "seen_demo", "when": {"fact": "demo_requested", "is": True}, "then": "demo",
             "because": "demo"}]},
    ]
    rules = tmp_path / "typed.json"
    rules.write_text(json.dumps(doc, indent=2), "utf-8")
    fields = {"hubspot": {"engagement_points": "crmsync_engagement_points",
                          "hot": "crmsync_hot", "signals_seen": "crmsync_signals_seen"},
              "salesforce": {"engagement_points": "Crmsync_Engagement_Points__c",
                             "hot": "Crmsync_Hot__c", "signals_seen": "Crmsync_Signals_Seen__c"}
              }[crm.crm]
    field_map = json.loads((ROOT / f"connectors/{crm.crm}.json").read_text("utf-8"))
    field_map.pop("$schema", None)
    field_map["outputs"].update({name: {"field": f} for name, f in fields.items()})
    map_path = tmp_path / "typed-map.json"
    map_path.write_text(json.dumps(field_map, indent=2), "utf-8")
    _configure(crm, rules, map_path)
    crm.setup()

    sdk, (trial, demo) = _sdk(crm), RAW[crm.crm]
    if crm.crm == "hubspot":
        types = {name: sdk.crm.properties.core_api.get_by_name("contacts", f).type
                 for name, f in fields.items()}
        assert types == {"engagement_points": "number", "hot": "bool",
                         "signals_seen": "string"}
    else:
        described = {f["name"]: f for f in sdk.Lead.describe()["fields"]}
        assert [described[f]["type"] for f in fields.values()] == ["double", "boolean",
                                                                   "string"]
        assert described[fields["signals_seen"]]["label"] == "Signals seen"

    assert crm.run(full=True).exit_code == ExitCode.OK
    if crm.crm == "hubspot":
        rows = [{"id": p.id, **p.properties} for p in sdk.crm.contacts.get_all(
            properties=[*fields.values(), trial, demo])]
    else:
        rows = sdk.query_all(f"SELECT Id, {', '.join(fields.values())}, {trial}, {demo} "
                             "FROM Lead")["records"]
    assert rows
    for row in rows:
        has_trial, has_demo = coerce(row.get(trial), "bool"), coerce(row.get(demo), "bool")
        assert coerce(row.get(fields["engagement_points"]), "int") == (7 if has_trial else 0)
        assert coerce(row.get(fields["hot"]), "bool") is bool(has_trial)
        seen = [s for s, on in (("trial", has_trial), ("demo", has_demo)) if on]
        assert (row.get(fields["signals_seen"]) or None) == ("; ".join(seen) or None)
