"""A short property-based run: random interleavings of the money steps with DynamoDB faults keep CONTRACT §6.

``tests/interleavings.py`` has the state machine (start, worker run, claim,
complete, fail, release, cancel, sweep, dead-letter, Stars payment and
refund, retries, time passing; a fault on a chosen DynamoDB call in some
steps) and checks the invariants after every step and after settling. This
run is bounded to well under a minute; ``python -m bench.interleavings`` runs
the benchmark-sized one.
"""

from __future__ import annotations

from tests import interleavings

EXAMPLES = 20
STEPS = 25


def test_random_interleavings_with_faults_keep_the_money_invariants(aws: None) -> None:
    before = interleavings.STATS["interleavings"]
    interleavings.run(examples=EXAMPLES, steps=STEPS, seed=12, machine_class=interleavings.machine())
    checked = interleavings.STATS["interleavings"] - before
    assert checked >= EXAMPLES  # hypothesis ran them all (a failure would have raised with its example)
