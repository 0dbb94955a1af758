"""django-q2 tasks for characters: ids in, domain call, safe to run twice."""

from characters import registry


def register_binding(binding_id: int) -> None:
    registry.register(binding_id)
