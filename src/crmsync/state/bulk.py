"""Many rows in one statement at driver speed: a Core statement compiled once per dialect.

``conn.execute(table.insert(), rows)`` runs every value of every row through SQLAlchemy's
parameter machinery and type processors on each call, which costs more CPU than SQLite spends
storing the row (measured with ``benchmarks/store_bench.py``). A :class:`Bulk` compiles its
statement once for the engine's dialect, converts the values that are the same for the whole
batch (run id, stream, the bookkeeping clock) once, converts the others with the very
processors SQLAlchemy would use (so what is stored is identical), and hands the rows to the
driver's ``executemany`` through ``exec_driver_sql`` (database errors are still SQLAlchemy's
``DBAPIError``, which the store turns into :class:`~crmsync.state.errors.StateError`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect


class Bulk:
    """One INSERT/UPDATE of ``table``, compiled once, run with many rows.

    Args:
        dialect: The engine's dialect.
        table: The table whose column types convert the values.
        statement: A Core statement whose bind parameters are named after ``table``'s columns
            (or given explicitly by ``types``).
        columns: Every bind parameter of the statement, in the order of a full row.
        types: Column types by name, for bind parameters that are not columns of ``table``.
    """

    def __init__(
        self,
        dialect: Dialect,
        table: sa.Table,
        statement: sa.Executable,
        columns: Sequence[str],
        types: Mapping[str, sa.types.TypeEngine[Any]] | None = None,
    ) -> None:
        compiled = statement.compile(  # type: ignore[attr-defined]
            dialect=dialect, column_keys=list(columns))
        self.sql = str(compiled)
        self.columns = tuple(columns)
        if set(compiled.params) != set(self.columns):  # a literal would need its own value
            raise ValueError(f"statement parameters {sorted(compiled.params)} are not the "
                             f"columns given {sorted(self.columns)}")
        typed = {**{c.name: c.type for c in table.c}, **(types or {})}
        self._processors = tuple(typed[name].dialect_impl(dialect).bind_processor(dialect)
                                 for name in self.columns)
        # qmark/format drivers (sqlite3) take tuples in the order the SQL names them; named
        # ones (psycopg's pyformat) take dicts.
        order = compiled.positiontup
        self._named = order is None
        # Where each column goes in the driver's parameters.
        self._slots = tuple(range(len(self.columns))) if order is None else tuple(
            order.index(name) for name in self.columns)
        # Row builders by the set of columns given as constants (see _builder_factory).
        self._builders: dict[frozenset[str], Callable[..., Any]] = {}

    def execute(self, conn: sa.Connection, rows: Iterable[Sequence[Any]],
                constants: Mapping[str, Any] | None = None) -> None:
        """Run the statement once per row, in one ``executemany``.

        Args:
            conn: An open transaction.
            rows: The values of the columns not in ``constants``, in :attr:`columns` order.
            constants: Values shared by every row, converted once.
        """
        constants = constants or {}
        names = frozenset(constants)
        factory = self._builders.get(names)
        if factory is None:
            factory = self._builders[names] = self._builder_factory(names)
        shared = [constants[name] if process is None else process(constants[name])
                  for name, process in zip(self.columns, self._processors, strict=True)
                  if name in names]
        params = list(map(factory(*shared), rows))
        if params:
            conn.exec_driver_sql(self.sql, params)

    def _builder_factory(self, constant_names: frozenset[str]) -> Callable[..., Any]:
        """Return ``factory(*constant values) -> build(row) -> driver parameters``.

        The row builder is generated once per set of constant columns: one tuple (or dict, for
        named-parameter drivers) display per row, each value converted by the processor
        SQLAlchemy would use, instead of a loop over the columns per row. Only generated
        names (``r``, ``c3``, ``p5``) and slot numbers go into the source; values and
        processors are bound as arguments.
        """
        cells: list[str] = [""] * len(self.columns)
        namespace: dict[str, Any] = {}
        constant_args, index = [], 0
        for position, (name, slot, process) in enumerate(
                zip(self.columns, self._slots, self._processors, strict=True)):
            if name in constant_names:
                constant_args.append(f"c{position}")
                cells[slot] = f"c{position}"
                continue
            if process is None:
                cells[slot] = f"r[{index}]"
            else:
                # Every value, None too: a JSON column stores None as JSON null, as Core does.
                namespace[f"p{position}"] = process
                cells[slot] = f"p{position}(r[{index}])"
            index += 1
        if self._named:
            body = "{" + ", ".join(f"{name!r}: {cells[slot]}" for name, slot in
                                   zip(self.columns, self._slots, strict=True)) + "}"
        else:
            body = "(" + "".join(f"{cell}, " for cell in cells) + ")"
        source = f"lambda {', '.join(constant_args)}: lambda r: {body}"
        factory: Callable[..., Any] = eval(source, namespace)  # noqa: S307 - generated names only
        return factory


def dialect_insert(dialect: Dialect) -> Any:
    """The dialect's own ``insert`` (PostgreSQL's or SQLite's), which has ``ON CONFLICT``."""
    return postgresql.insert if dialect.name == "postgresql" else sqlite.insert


def one_of(dialect: Dialect, column: sa.ColumnElement[Any], name: str) -> sa.ColumnElement[bool]:
    """``column`` is one of the list given as parameter ``name``, in one bind parameter.

    PostgreSQL takes the list as one array (``= ANY(%(name)s)``), SQLite as one JSON array
    (``IN (SELECT value FROM json_each(?))``, an index lookup per value, as for a list). So the
    SQL text is the same for every length: no placeholder rendered per id on each execution,
    and the driver's statement cache is hit every time. Older SQLite builds without JSON
    functions in the core get an ``expanding`` IN.
    """
    if dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(column.type)))
    if dialect.name == "sqlite" and _sqlite_has_json():
        values = sa.func.json_each(sa.bindparam(name, type_=sa.JSON)).table_valued("value")
        return column.in_(sa.select(values.c.value))
    return column.in_(sa.bindparam(name, expanding=True))


def _sqlite_has_json() -> bool:
    import sqlite3  # only where SQLite is the store

    return sqlite3.sqlite_version_info >= (3, 38, 0)  # JSON functions built in from 3.38
