"""SQLAlchemy Core helpers shared by the store's repositories and the services' reads:
statements built once per table and dialect, keyed selects, upserts, chunking.

Building a Core statement costs more Python than running it, so the cold-path statements
here are cached per table and dialect with bound parameters. The hot tables' statements
are the driver's (`fastsql.py`, decision 0007).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, column, delete, select, values
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def select_by_keys(table: Table, names: Sequence[str], keys: Sequence[tuple[Any, ...]]) -> Any:
    """SELECT rows of `table` whose `names` columns equal one of `keys`.

    Written as a join with a VALUES list: SQLite plans a row-value IN as a full scan, but
    drives a join from a small VALUES list (a CTE: SQLite cannot name VALUES columns
    inline) through the primary key, as PostgreSQL does.
    """
    wanted = values(*(column(n, table.c[n].type) for n in names), name="wanted").data(
        list(keys)).cte("wanted")
    return select(table).select_from(table.join(
        wanted, and_(*(table.c[n] == wanted.c[n] for n in names))))


def insert_for(dialect: str) -> Any:
    """The dialect's INSERT with ON CONFLICT."""
    return sqlite_insert if dialect == "sqlite" else pg_insert


@cache
def upsert_stmt(dialect: str, table: Table) -> Any:
    """INSERT a row, or replace every non-key column of the row with its key."""
    stmt = insert_for(dialect)(table)
    keys = [c.name for c in table.primary_key.columns]
    return stmt.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys})


@cache
def by_columns(table: Table, names: tuple[str, ...]) -> Any:
    """SELECT * FROM table WHERE each named column equals its parameter `k_<name>`."""
    return select(table).where(*(table.c[n] == bindparam(f"k_{n}") for n in names))


@cache
def delete_by_columns(table: Table, names: tuple[str, ...]) -> Any:
    """DELETE FROM table WHERE each named column equals its parameter `k_<name>`."""
    return delete(table).where(*(table.c[n] == bindparam(f"k_{n}") for n in names))


def keyed(where: dict[str, Any]) -> dict[str, Any]:
    """The parameters of `by_columns` / `delete_by_columns` for `where`."""
    return {f"k_{name}": value for name, value in where.items()}


def one_row(conn: Connection, table: Table, where: dict[str, Any]) -> Any:
    """One row by its primary key (a cold path: Core, not the batch loads), or None."""
    return conn.execute(by_columns(table, tuple(where)), keyed(where)).mappings().first()


def upsert(conn: Connection, table: Table, new_rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows, replacing every non-key column of rows that exist (one statement)."""
    if not new_rows:
        return
    conn.execute(upsert_stmt(conn.dialect.name, table), list(new_rows))


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    """`items` in consecutive slices of at most `size`."""
    for i in range(0, len(items), size):
        yield items[i:i + size]
