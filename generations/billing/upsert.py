"""Add to a roll-up row in one statement, creating it if it is not there: INSERT … ON CONFLICT DO UPDATE.

Django's `bulk_create(update_conflicts=True)` sets a column to the new value; a roll-up needs
`column = column + new`, so the statement is written here. One statement is atomic on both
databases: two workers adding to the same row at once both count (PostgreSQL takes the row lock and
re-applies the addition to the committed value; SQLite runs one writer at a time), and a row two
workers create at once is created once (the unique index decides).
"""

from __future__ import annotations

from functools import cache

from django.db import connection


def add_to(model, key: dict, amounts: dict) -> None:
    """Add `amounts` (column → delta, may be negative) to `model`'s row for `key` (column → value).

    A key column that may be NULL needs two partial unique constraints on the model: one on the key
    WHERE it IS NOT NULL, one on the other columns WHERE it IS NULL (NULLs are distinct in a unique
    index, so a plain one would never conflict on a row without, say, a series)."""
    add_all([(model, key, amounts)])


def add_all(additions: list[tuple]) -> None:
    """add_to for each (model, key, amounts), in this order (the order every writer locks roll-up rows in, so two
    cannot deadlock). PostgreSQL takes them in one round trip: sent as a pipeline where statements are bound (and
    prepared) on the server, which takes one statement per execute; else as one string of them all. SQLite runs a
    statement at a time, in process."""
    statements = [_prepared(model, key, amounts) for model, key, amounts in additions]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(statements) > 1:
            if connection.settings_dict["OPTIONS"].get("server_side_binding"):
                # An error surfaces when the pipeline syncs, outside execute(): Django's error classes all the same.
                with connection.wrap_database_errors, connection.connection.pipeline():
                    for sql, values in statements:
                        cursor.execute(sql, values)
            else:
                cursor.execute(
                    "; ".join(sql for sql, _ in statements), [value for _, values in statements for value in values]
                )
            return
        for sql, values in statements:
            cursor.execute(sql, values)


def _prepared(model, key: dict, amounts: dict) -> tuple[str, list]:
    empty = tuple(name for name, value in key.items() if value is None)
    sql, fields = _statement(model, tuple(key), empty, tuple(amounts), connection.vendor)
    values = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, [*key.values(), *amounts.values()], strict=True)
    ]
    return sql, values


@cache
def _statement(model, key: tuple, empty: tuple, amounts: tuple, vendor: str) -> tuple[str, list]:
    """The statement for this shape of call, built once (a ledger write makes four or five)."""
    meta = model._meta
    fields = {f.attname: f for f in meta.concrete_fields}
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    column = {name: quote(fields[name].column) for name in (*key, *amounts)}
    target = ", ".join(column[name] for name in key if name not in empty)
    predicate = " AND ".join(
        f"{column[name]} IS {'' if name in empty else 'NOT '}NULL" for name in key if fields[name].null
    )
    updates = ", ".join(f"{column[name]} = {table}.{column[name]} + EXCLUDED.{column[name]}" for name in amounts)
    sql = (
        f"INSERT INTO {table} ({', '.join(column.values())}) VALUES ({', '.join(['%s'] * len(column))}) "
        f"ON CONFLICT ({target}){f' WHERE {predicate}' if predicate else ''} DO UPDATE SET {updates}"
    )
    return sql, [fields[name] for name in (*key, *amounts)]
