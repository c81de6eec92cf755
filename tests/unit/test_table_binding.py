"""Every model of a shared table is listed with it, so ``bind_tables`` rebinds and shares it by name.

A model left out works today only because PynamoDB lets it read its base's
connection by inheritance until it sets one of its own.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import tables


def _descendants(model: type[Any]) -> set[type[Any]]:
    found: set[type[Any]] = set()
    for child in model.__subclasses__():
        found |= {child, *_descendants(child)}
    return found


@pytest.mark.parametrize(
    ("base", "listed"),
    [(tables._Guard, tables.GUARD_MODELS), (tables._GrowthItem, tables.GROWTH_MODELS)],
    ids=["guards", "growth"],
)
def test_every_model_of_a_shared_table_is_listed(base: type[Any], listed: tuple[type[Any], ...]) -> None:
    assert _descendants(base) - set(listed) == set()
