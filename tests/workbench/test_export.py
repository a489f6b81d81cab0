"""``crmsync export``: the CRM's contacts as the JSON Lines the offline commands read.

Through the real SDKs against the sandbox CRMs. The round trip is checked against what a real
run wrote to the CRM, so the file is as good as the CRM for deciding contacts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sync.conftest import Crm
from workbench.conftest import DEFAULT_RULES, NOW, decisions, invoke

#: The sandbox CRMs' personal fields (what a redacted file must not contain).
PERSONAL_FIELDS = {
    "hubspot": ("email", "firstname", "lastname"),
    "salesforce": ("Email", "FirstName", "LastName", "Name"),
}


def _export(crm: Crm, path: Path, *extra: str) -> list[dict]:
    crm.setup()  # the read asks for crmsync's output fields too (previous_status...)
    code, _, err = invoke("export", path, "--config", crm.config, *extra)
    assert code == 0, err
    assert "exported 150 contacts" in err
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def _strings(value: object) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return {s for v in value.values() for s in _strings(v)}
    if isinstance(value, list):
        return {s for v in value for s in _strings(v)}
    return set()


def test_export_round_trips_into_evaluate_as_a_run_decides(crm: Crm, tmp_path: Path) -> None:
    contacts = tmp_path / "contacts.jsonl"
    rows = _export(crm, contacts)
    assert len({row["id"] for row in rows}) == 150
    # The file holds canonical facts (not CRM field names), typed as a run sees them.
    assert {"employees", "country", "created_at", "previous_status"} <= rows[0].keys()
    assert all(isinstance(r["employees"], int) for r in rows if r.get("employees") is not None)
    offline = decisions(DEFAULT_RULES, contacts, tmp_path / "decisions.jsonl")
    # A real run at the same clock decides from the CRM and writes its statuses there.
    crm.run(now=datetime.fromisoformat(NOW.replace("Z", "+00:00")).astimezone(UTC))
    written = {r["id"]: (r.get(crm.shape["status"]), r.get(crm.shape["score"]))
               for r in crm.contacts()}
    assert written == {cid: (d["status"], _crm_score(crm, d["score"]))
                       for cid, d in offline.items()}


def _crm_score(crm: Crm, score: int) -> object:
    # HubSpot stores every property as text; Salesforce's number field comes back a float.
    return str(score) if crm.crm == "hubspot" else float(score)


def test_redact_leaves_no_personal_value_and_decides_the_same(crm: Crm, tmp_path: Path) -> None:
    full = _export(crm, tmp_path / "full.jsonl")
    redacted = _export(crm, tmp_path / "redacted.jsonl", "--redact")
    personal = {str(record[field]) for record in crm.contacts()
                for field in PERSONAL_FIELDS[crm.crm] if record.get(field)}
    assert len(personal) > 150  # the sandbox does have names and addresses to leak
    assert personal & set().union(*map(_strings, full)), "the full export should hold them"
    assert not personal & set().union(*map(_strings, redacted))
    text = (tmp_path / "redacted.jsonl").read_text("utf-8")
    leaked = [value for value in personal if "@" in value or " " in value if value in text]
    assert leaked == []
    assert all(not {"email", "first_name", "last_name"} & row.keys() for row in redacted)
    # email_domain stays (the personal-email rule reads it), so decisions do not move; only
    # task subjects that greet the contact by name fall back to their generic text.
    assert all(kept.get("email_domain") for row, kept in zip(full, redacted, strict=True)
               if row.get("email"))
    before = decisions(DEFAULT_RULES, tmp_path / "full.jsonl", tmp_path / "a.jsonl")
    after = decisions(DEFAULT_RULES, tmp_path / "redacted.jsonl", tmp_path / "b.jsonl")
    assert _without_text(before) == _without_text(after)


def _without_text(by_id: dict[str, dict]) -> dict[str, dict]:
    return {cid: {**d, "tasks": [(t["purpose"], t["due"]) for t in d["tasks"]]}
            for cid, d in by_id.items()}


def test_fields_limits_the_facts_and_stdout_works(crm: Crm, tmp_path: Path) -> None:
    crm.setup()
    code, out, err = invoke("export", "-", "--config", crm.config,
                            "--fields", "employees, country")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 150
    assert {key for row in rows for key in row} == {"id", "employees", "country"}
    assert "exported 150 contacts to stdout" in err


def test_an_unknown_field_is_a_usage_error_with_a_suggestion(tmp_path: Path) -> None:
    config = tmp_path / "crmsync.toml"
    config.write_text('[crm]\ntype = "hubspot"\ntoken = "x"\n', "utf-8")
    code, _, err = invoke("export", tmp_path / "out.jsonl", "--config", config,
                          "--fields", "employes")
    assert code == 2
    assert "did you mean 'employees'" in err
    assert not (tmp_path / "out.jsonl").exists()
