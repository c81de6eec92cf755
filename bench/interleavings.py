"""Random interleavings of the money steps with DynamoDB faults, checked against CONTRACT §6 after every step.

    python -m bench.interleavings --examples 300 --steps 40 --seed 1

Runs ``tests.interleavings`` (a hypothesis state machine: start, worker run,
claim, complete, fail, release, cancel, sweep, dead-letter, Stars payment and
refund, joining from a referral link, promo-code redemption, webhook updates,
retries, time passing; a fault on a chosen DynamoDB call in some
steps) on in-process moto, and prints how many interleavings and steps were
checked, how many faults fired, what the steps raised, and the first
violation found (shrunk by hypothesis unless ``--no-shrink``), with the
command that reproduces the run. ``--exclude-steps`` / ``--exclude-faults``
leave out steps or fault kinds (say, one whose fix has not landed yet).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=300, help="interleavings to generate")
    parser.add_argument("--steps", type=int, default=40, help="at most this many steps each")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--exclude-steps", default="", help="comma-separated steps to leave out")
    parser.add_argument("--exclude-faults", default="", help="comma-separated fault kinds to leave out")
    parser.add_argument("--no-delivery", action="store_true", help="skip the end check that completed means delivered")
    parser.add_argument("--no-shrink", action="store_true", help="report the first violation as found, unshrunk")
    args = parser.parse_args(argv)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "CRITICAL")  # before chalicelib is imported
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

    from tests import interleavings

    def names(text: str) -> frozenset[str]:
        return frozenset(name.strip() for name in text.split(",") if name.strip())

    machine = interleavings.machine(
        excluded_steps=names(args.exclude_steps),
        excluded_faults=names(args.exclude_faults),
        delivery=not args.no_delivery,
    )
    command = "python -m bench.interleavings " + " ".join(argv if argv is not None else sys.argv[1:])
    began = time.monotonic()
    failure: BaseException | None = None
    try:
        with interleavings.world():
            interleavings.run(
                examples=args.examples,
                steps=args.steps,
                seed=args.seed,
                shrink=not args.no_shrink,
                machine_class=machine,
            )
    except Exception as error:  # the violation hypothesis found (an ExceptionGroup when several differ)
        failure = error
    seconds = time.monotonic() - began
    stats = interleavings.STATS
    print(
        f"{stats['interleavings']} interleavings, {stats['steps']} steps, {stats['faults fired']} injected faults "
        f"fired, in {seconds:.0f} s (the §6 invariants checked after every step and after settling)"
    )
    for name, value in sorted(stats.items()):
        if name.startswith(("step ", "fault ", "raised ")):
            print(f"  {name}: {value}")
    if failure is None:
        print("no violation found")
    else:
        traceback.print_exception(failure, file=sys.stdout)  # with hypothesis's minimal example(s) as notes
        print(f"VIOLATION: {type(failure).__name__}: {failure}")
    print(f"reproduce: {command}")
    return 0 if failure is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
