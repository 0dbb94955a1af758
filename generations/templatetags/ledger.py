"""Template helpers for the spending report."""

from django import template

from generations.billing import money

register = template.Library()


@register.filter
def get_item(mapping, key):
    """`report.by|get_item:"model"`: a dict lookup with a variable key."""
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def dollars(value) -> str:
    """$6,000.00: grouped, for totals and projections people compare at a glance."""
    return money.usd(value, grouped=True)
