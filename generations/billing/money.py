"""Money: the ledger's precision and the ways people and files read an amount. USD, Decimal, never float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
MICRO = Decimal("0.000001")


def money(value) -> Decimal:
    """USD as Decimal, kept to 6 places in the ledger (prices like $0.10/s are exact)."""
    return Decimal(value).quantize(MICRO, rounding=ROUND_HALF_UP)


def usd(value, *, grouped: bool = False) -> str:
    """For people: "$0.40", or "$6,000.00" grouped for totals compared at a glance; "—" for no amount."""
    if value is None or value == "":
        return "—"
    amount = Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
    return f"${amount:,}" if grouped else f"${amount}"


def cents(value) -> str:
    """For CSV and JSON: "0.40", two places, no sign of the currency."""
    return f"{Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)}"


def exact(value) -> str:
    """For the export's manifest: the ledger's amount as kept, without trailing zeros ("0.1")."""
    return f"{Decimal(value).quantize(MICRO).normalize():f}"
