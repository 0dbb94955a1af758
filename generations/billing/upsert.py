"""Add to a roll-up row in one statement, creating it if it is not there: INSERT … ON CONFLICT DO UPDATE.

Django's `bulk_create(update_conflicts=True)` sets a column to the new value; a roll-up needs
`column = column + new`, so the statement is written here. One statement is atomic on both
databases: two workers adding to the same row at once both count (PostgreSQL takes the row lock and
re-applies the addition to the committed value; SQLite runs one writer at a time), and a row two
workers create at once is created once (the unique index decides).
"""

from __future__ import annotations

from django.db import connection


def add_to(model, key: dict, amounts: dict) -> None:
    """Add `amounts` (column → delta, may be negative) to `model`'s row for `key` (column → value).

    A key column that may be NULL needs two partial unique constraints on the model: one on the key
    WHERE it IS NOT NULL, one on the other columns WHERE it IS NULL (NULLs are distinct in a unique
    index, so a plain one would never conflict on a row without, say, a series)."""
    meta = model._meta
    fields = {f.attname: f for f in meta.concrete_fields}
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    nullable = [name for name in key if fields[name].null]
    target = ", ".join(quote(fields[name].column) for name, value in key.items() if value is not None)
    predicate = " AND ".join(
        f"{quote(fields[name].column)} IS {'' if key[name] is None else 'NOT '}NULL" for name in nullable
    )
    columns = [*key, *amounts]
    values = [fields[name].get_db_prep_save(value, connection) for name, value in {**key, **amounts}.items()]
    updates = ", ".join(
        f"{quote(fields[name].column)} = {table}.{quote(fields[name].column)} + EXCLUDED.{quote(fields[name].column)}"
        for name in amounts
    )
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(fields[name].column) for name in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({target}){f' WHERE {predicate}' if predicate else ''} DO UPDATE SET {updates}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
