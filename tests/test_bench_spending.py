"""`make bench` must keep working as the schema changes: run it on a few hundred rows."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_the_spending_benchmark_runs_and_agrees_with_hand_written_sql():
    out = StringIO()
    call_command("bench_spending", rows=600, repeat=1, yes=True, stdout=out)
    text = out.getvalue()
    assert "600 cost entries in the ledger" in text
    assert "floor: hand SQL on the ledger" in text
    assert "| one creator |" in text and "| whole studio (staff view) |" in text


def test_it_refuses_to_fill_a_database_without_being_told():
    with pytest.raises(CommandError, match="throw-away"):
        call_command("bench_spending", rows=10)
