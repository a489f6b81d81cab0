"""Bring a store written by an older crmsync up to :data:`SCHEMA_VERSION`.

New tables need nothing (``create_all`` adds them); new columns of existing tables are added
here, one step per version. Every step is idempotent, because two processes may open an old
store at the same moment: a column the other process added first is simply there.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from crmsync.state.schema import (
    REDECIDE_AFTER_UPGRADE,
    SCHEMA_VERSION,
    _contacts,
    _runs,
    _schema_version,
    _stream_stamps,
)


def upgrade(engine: Engine, version: int) -> int:
    """Migrate a store at schema ``version`` to :data:`SCHEMA_VERSION`; return the new version."""
    if version < 2:
        _add_columns(engine, _runs, ("connection", "trigger"))
    if version < 3:
        # Rows saved before hold no owner or lead source: have the next run decide every
        # contact again (it reads them whole and saves both, writing to the CRM only what
        # changed), so the report's breakdowns do not wait for each contact to change.
        _add_columns(engine, _contacts, ("owner_id", "lead_source"))
        _redecide_everything(engine)
        # Shadow comparisons (``[rules] shadow``) and schedule pauses. ``create_all`` on open
        # has usually made the tables already; this step says so, and is a no-op then.
        from crmsync.state.shadow import _shadow
        from crmsync.state.slots import _pauses

        _shadow.create(engine, checkfirst=True)
        _pauses.create(engine, checkfirst=True)
    if version < SCHEMA_VERSION:
        try:
            with engine.begin() as conn:
                conn.execute(_schema_version.insert().values(version=SCHEMA_VERSION))
        except IntegrityError:
            pass  # another process recorded the same upgrade
    return SCHEMA_VERSION


def _redecide_everything(engine: Engine) -> None:
    """Make the next run of every stream read and decide all of its contacts once.

    A contact is skipped when its saved decision has the run's rules and its CRM stamp; with
    the rules forgotten (``ruleset_hash`` empty) none is, and a stream stamped
    :data:`REDECIDE_AFTER_UPGRADE` is read whole, saying why.
    """
    with engine.begin() as conn:
        conn.execute(_contacts.update().values(ruleset_hash=""))
        conn.execute(_stream_stamps.update().values(ruleset_version=REDECIDE_AFTER_UPGRADE,
                                                    ruleset_hash=""))


def _add_columns(engine: Engine, table: sa.Table, names: tuple[str, ...]) -> None:
    """``ALTER TABLE ... ADD COLUMN`` for each of ``names`` the table lacks."""
    for name in names:
        if name in {c["name"] for c in sa.inspect(engine).get_columns(table.name)}:
            continue
        column = table.c[name]
        preparer = engine.dialect.identifier_preparer
        kind = column.type.compile(dialect=engine.dialect)
        ddl = f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {preparer.quote(name)} {kind}"
        if column.server_default is not None:
            default = column.server_default.arg  # type: ignore[attr-defined]
            ddl += f" DEFAULT '{default}'"
        if not column.nullable:
            ddl += " NOT NULL"
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(ddl))
        except sa.exc.DBAPIError:
            # A concurrent opener added it first; anything else fails loudly on the re-check.
            columns = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
            if name not in columns:
                raise
