"""English counts in API messages agree with their noun (CONTRACT §8)."""

from __future__ import annotations

from chalicelib.text import counted


def test_counted_writes_one_in_the_singular() -> None:
    assert [counted(n, "credit") for n in (0, 1, 2, 21)] == ["0 credits", "1 credit", "2 credits", "21 credits"]
