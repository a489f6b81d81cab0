"""The property registry: groups, property definitions, and what a value must look like.

Holds the seeded HubSpot schema (standard properties plus the ``engagement`` custom group) and
whatever ``crmsync setup`` creates through the properties API. It validates definitions (name
rules, ``type``/``fieldType`` pairs, §3.7) and values on write (unknown property, bad option,
bad number or date), and normalises values to HubSpot's wire strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crmsync.sandbox.hubspot.errors import fail, invalid_properties

#: Allowed ``fieldType`` values per ``type`` (§3.7); other pairs are a 400.
FIELD_TYPES = {
    "string": {"text", "textarea", "html", "file"},
    "number": {"number", "calculation_equation"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox", "calculation_equation"},
    "bool": {"booleancheckbox", "calculation_equation"},
    "date": {"date", "calculation_equation"},
    "datetime": {"date", "calculation_equation"},
    "phone_number": {"phonenumber"},
}
NAME_RULE = re.compile(r"^[a-z][a-z0-9_]*$")
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$")


def iso_ms(ms: int) -> str:
    """Render epoch milliseconds the way HubSpot does: ``2024-05-01T09:00:00.000Z``."""
    seconds = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{seconds}.{ms % 1000:03d}Z"


def parse_instant(value: str) -> int:
    """Parse epoch milliseconds or ISO-8601 into epoch milliseconds; ValueError if neither."""
    text = value.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if not _ISO.match(text):
        raise ValueError(value)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


@dataclass
class Option:
    """One enumeration option; writes use ``value``, never ``label``."""

    label: str
    value: str
    display_order: int = 0
    hidden: bool = False
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the wire form."""
        return {
            "label": self.label,
            "value": self.value,
            "displayOrder": self.display_order,
            "hidden": self.hidden,
            "description": self.description,
        }

    @classmethod
    def from_json(cls, raw: Any, index: int) -> Option:
        """Parse an option from a create/patch body (400 when malformed)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("value"), str):
            fail(400, f"Invalid input JSON: options[{index}] needs a string 'value'")
        return cls(
            label=str(raw.get("label", raw["value"])),
            value=raw["value"],
            display_order=int(raw.get("displayOrder", index)),
            hidden=bool(raw.get("hidden", False)),
            description=str(raw.get("description", "")),
        )


@dataclass
class PropertyDef:
    """One property definition.

    Attributes:
        read_only: The value cannot be written through the API (system / calculated).
        unique: ``hasUniqueValue``; such properties can serve as ``idProperty``.
    """

    name: str
    label: str
    type: str
    field_type: str
    group: str
    description: str = ""
    options: list[Option] = field(default_factory=list)
    display_order: int = -1
    hubspot_defined: bool = True
    read_only: bool = False
    unique: bool = False
    hidden: bool = False
    form_field: bool = False
    created_ms: int = 0
    updated_ms: int = 0
    archived: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the wire ``Property`` model."""
        body: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group,
            "options": [o.to_json() for o in self.options],
            "displayOrder": self.display_order,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": self.unique,
            "hidden": self.hidden,
            "hubspotDefined": self.hubspot_defined,
            "formField": self.form_field,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "archived": self.archived,
        }
        if self.created_ms:
            body["createdAt"] = iso_ms(self.created_ms)
        if self.updated_ms:
            body["updatedAt"] = iso_ms(self.updated_ms)
        return body

    def normalise(self, raw: Any) -> tuple[str | None, dict[str, str] | None]:
        """Return (stored value, problem) for a written value; ``""``/None clears."""
        if raw is None:
            return None, None
        if isinstance(raw, bool):
            text = "true" if raw else "false"
        elif isinstance(raw, int | float):
            text = str(int(raw)) if isinstance(raw, float) and raw.is_integer() else str(raw)
        else:
            text = str(raw)
        if text == "":
            return None, None
        kind = self.type
        if kind == "number":
            try:
                float(text)
            except ValueError:
                return None, self._problem("INVALID_DECIMAL", f"{text!r} is not a valid number")
            return text, None
        if kind == "bool" or (kind == "enumeration" and self.field_type == "booleancheckbox"):
            if text.lower() not in ("true", "false"):
                return None, self._problem("INVALID_OPTION", f"{text!r} is not a valid boolean")
            return text.lower(), None
        if kind == "enumeration":
            allowed = {o.value for o in self.options}
            parts = text.split(";") if self.field_type == "checkbox" else [text]
            bad = [p for p in parts if p not in allowed]
            if bad:
                return None, self._problem(
                    "INVALID_OPTION",
                    f"{bad[0]} was not one of the allowed options: "
                    + ", ".join(f"[{o.value}]" for o in self.options),
                )
            return text, None
        if kind in ("datetime", "date"):
            try:
                ms = parse_instant(text)
            except (ValueError, OverflowError):
                return None, self._problem("INVALID_DATE", f"{text!r} is not a valid date")
            if kind == "date":
                if ms % 86_400_000:
                    return None, self._problem(
                        "INVALID_DATE", f"{text!r} is not at midnight UTC, as a date must be"
                    )
                return iso_ms(ms)[:10], None
            return iso_ms(ms), None
        return text, None

    def _problem(self, code: str, message: str) -> dict[str, str]:
        return {"name": self.name, "error": code, "message": message}


@dataclass
class Group:
    """A property group."""

    name: str
    label: str
    display_order: int = -1
    archived: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the wire ``PropertyGroup`` model."""
        return {
            "name": self.name,
            "label": self.label,
            "displayOrder": self.display_order,
            "archived": self.archived,
        }


class PropertyRegistry:
    """Groups and property definitions of one object type."""

    def __init__(self, object_type: str) -> None:
        self.object_type = object_type
        self.groups: dict[str, Group] = {}
        self.props: dict[str, PropertyDef] = {}

    def get(self, name: str) -> PropertyDef | None:
        """Return a live (not archived) property, or None."""
        prop = self.props.get(name)
        return prop if prop is not None and not prop.archived else None

    def add_group(self, group: Group) -> None:
        """Register a group (seeding; no validation)."""
        self.groups[group.name] = group

    def add(self, prop: PropertyDef) -> None:
        """Register a property (seeding; no validation)."""
        self.props[prop.name] = prop

    # -- API operations -------------------------------------------------------------------

    def create_group(self, body: Any) -> Group:
        """Create a group from a POST body; 400 on bad input, 409 when it exists."""
        if not isinstance(body, dict):
            fail(400, "Invalid input JSON on line 1")
        name, label = body.get("name"), body.get("label")
        if not isinstance(name, str) or not isinstance(label, str):
            fail(400, "Invalid input JSON: 'name' and 'label' are required")
        if not NAME_RULE.match(name):
            fail(400, f"Invalid group name {name!r}: use lowercase letters, digits and _")
        if name in self.groups and not self.groups[name].archived:
            fail(
                409,
                f"A property group named '{name}' already exists.",
                category="OBJECT_ALREADY_EXISTS",
            )
        group = Group(name, label, int(body.get("displayOrder", -1)))
        self.groups[name] = group
        return group

    def update_group(self, name: str, body: Any) -> Group:
        """PATCH a group's label or display order."""
        group = self.groups.get(name)
        if group is None or group.archived:
            fail(404, f"Unable to find property group {name}")
        if not isinstance(body, dict):
            fail(400, "Invalid input JSON on line 1")
        if "label" in body:
            group.label = str(body["label"])
        if "displayOrder" in body:
            group.display_order = int(body["displayOrder"])
        return group

    def create(self, body: Any, now_ms: int) -> PropertyDef:
        """Create a custom property from a POST body (§3.7 rules)."""
        if not isinstance(body, dict):
            fail(400, "Invalid input JSON on line 1")
        required = ("name", "label", "type", "fieldType", "groupName")
        missing = [k for k in required if not body.get(k)]
        if missing:
            fail(400, f"Invalid input JSON: missing required fields {missing}")
        name = str(body["name"])
        if not NAME_RULE.match(name):
            fail(
                400,
                f"Property name {name!r} is invalid: names are lowercase letters, digits and "
                "underscores, starting with a letter",
            )
        if name.startswith("hs_"):
            fail(400, f"Property name {name!r} is invalid: the hs_ prefix is reserved")
        if name in self.props:
            fail(
                409,
                f"A property named '{name}' already exists.",
                category="OBJECT_ALREADY_EXISTS",
            )
        group = str(body["groupName"])
        if group not in self.groups or self.groups[group].archived:
            fail(400, f"Property group {group!r} does not exist")
        kind, field_type = str(body["type"]), str(body["fieldType"])
        _check_pair(kind, field_type)
        options = [Option.from_json(o, i) for i, o in enumerate(body.get("options") or [])]
        if kind == "bool" and not options:
            options = [Option("Yes", "true", 0), Option("No", "false", 1)]
        prop = PropertyDef(
            name=name,
            label=str(body["label"]),
            type=kind,
            field_type=field_type,
            group=group,
            description=str(body.get("description", "")),
            options=options,
            display_order=int(body.get("displayOrder", -1)),
            hubspot_defined=False,
            unique=bool(body.get("hasUniqueValue", False)),
            hidden=bool(body.get("hidden", False)),
            form_field=bool(body.get("formField", False)),
            created_ms=now_ms,
            updated_ms=now_ms,
        )
        self.props[name] = prop
        return prop

    def update(self, name: str, body: Any, now_ms: int) -> PropertyDef:
        """PATCH a property: options are replaced as a whole; type changes are re-validated."""
        prop = self.get(name)
        if prop is None:
            fail(404, f"Unable to find property {name}")
        if not isinstance(body, dict):
            fail(400, "Invalid input JSON on line 1")
        kind = str(body.get("type", prop.type))
        field_type = str(body.get("fieldType", prop.field_type))
        if (kind, field_type) != (prop.type, prop.field_type):
            if prop.hubspot_defined:
                fail(400, f"Property {name} is HubSpot-defined; its type cannot change")
            _check_pair(kind, field_type)
        group = str(body.get("groupName", prop.group))
        if group not in self.groups:
            fail(400, f"Property group {group!r} does not exist")
        prop.type, prop.field_type, prop.group = kind, field_type, group
        if "label" in body:
            prop.label = str(body["label"])
        if "description" in body:
            prop.description = str(body["description"])
        if "hidden" in body:
            prop.hidden = bool(body["hidden"])
        if "displayOrder" in body:
            prop.display_order = int(body["displayOrder"])
        if "formField" in body:
            prop.form_field = bool(body["formField"])
        if "options" in body:
            prop.options = [Option.from_json(o, i) for i, o in enumerate(body["options"] or [])]
        prop.updated_ms = now_ms
        return prop

    def archive(self, name: str) -> None:
        """Archive (DELETE) a custom property."""
        prop = self.get(name)
        if prop is None:
            fail(404, f"Unable to find property {name}")
        if prop.hubspot_defined:
            fail(400, f"Property {name} is HubSpot-defined and cannot be archived")
        prop.archived = True

    def validate_values(
        self, values: Any, *, system: bool = False
    ) -> dict[str, str | None]:
        """Check and normalise a ``properties`` write; fail with one 400 listing every problem.

        Args:
            values: The ``properties`` object of a write.
            system: Allow writing read-only properties (seeding and sandbox "user edits").
        """
        if not isinstance(values, dict):
            fail(400, "Invalid input JSON: 'properties' must be an object")
        out: dict[str, str | None] = {}
        problems: list[dict[str, str]] = []
        for name, raw in values.items():
            prop = self.get(name)
            if prop is None:
                problems.append(
                    {
                        "name": name,
                        "error": "PROPERTY_DOESNT_EXIST",
                        "message": f'Property "{name}" does not exist',
                    }
                )
                continue
            if prop.read_only and not system:
                problems.append(
                    {
                        "name": name,
                        "error": "READ_ONLY_VALUE",
                        "message": f'Property "{name}" is a read only property; its value cannot '
                        "be set.",
                    }
                )
                continue
            value, problem = prop.normalise(raw)
            if problem is not None:
                problems.append(problem)
            else:
                out[name] = value
        if problems:
            invalid_properties(problems)
        return out

    # -- persistence ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Return groups and properties as JSON-ready data."""
        return {
            "groups": [g.to_json() for g in self.groups.values()],
            "properties": [
                {**p.to_json(), "_readOnly": p.read_only, "_createdMs": p.created_ms,
                 "_updatedMs": p.updated_ms}
                for p in self.props.values()
            ],
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Replace groups and properties with data from :meth:`snapshot`."""
        self.groups = {
            g["name"]: Group(g["name"], g["label"], g["displayOrder"], g["archived"])
            for g in data["groups"]
        }
        self.props = {}
        for p in data["properties"]:
            self.props[p["name"]] = PropertyDef(
                name=p["name"],
                label=p["label"],
                type=p["type"],
                field_type=p["fieldType"],
                group=p["groupName"],
                description=p["description"],
                options=[Option.from_json(o, i) for i, o in enumerate(p["options"])],
                display_order=p["displayOrder"],
                hubspot_defined=p["hubspotDefined"],
                read_only=p["_readOnly"],
                unique=p["hasUniqueValue"],
                hidden=p["hidden"],
                form_field=p["formField"],
                created_ms=p["_createdMs"],
                updated_ms=p["_updatedMs"],
                archived=p["archived"],
            )


def _check_pair(kind: str, field_type: str) -> None:
    if kind not in FIELD_TYPES:
        fail(400, f"Invalid property type {kind!r}; expected one of {sorted(FIELD_TYPES)}")
    if field_type not in FIELD_TYPES[kind]:
        fail(
            400,
            f"fieldType {field_type!r} is not valid for type {kind!r}; expected one of "
            f"{sorted(FIELD_TYPES[kind])}",
        )
