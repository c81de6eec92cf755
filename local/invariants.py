"""Check the money invariants of CONTRACT §6 from the tables themselves.

Used after every test that touches the tables and after load and fuzz
runs. Reads everything (Scan), so it is for tests and benchmarks only.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from chalicelib.model import ACTIVE_STATUSES, REFUNDED_STATUSES, LedgerReason, PaymentStatus
from chalicelib.tables import Generation, LedgerEntry, Payment, User


def violations() -> list[str]:
    """Every broken invariant, as a sentence; empty when the books are straight."""
    problems: list[str] = []
    users = {int(user.user_id): user for user in User.scan(consistent_read=True)}
    ledger = list(LedgerEntry.scan(consistent_read=True))
    generations = list(Generation.scan(consistent_read=True))
    payments = list(Payment.scan(consistent_read=True))

    balance_from_ledger: dict[int, int] = defaultdict(int)
    charges: Counter[str] = Counter()
    refunds: Counter[str] = Counter()
    purchases: Counter[str] = Counter()
    for entry in ledger:
        balance_from_ledger[int(entry.user_id)] += int(entry.delta)
        if entry.reason == LedgerReason.GENERATION:
            charges[entry.generation_id or ""] += 1
        elif entry.reason == LedgerReason.REFUND:
            refunds[entry.generation_id or ""] += 1
        elif entry.reason == LedgerReason.PURCHASE:
            purchases[entry.payment_charge_id or ""] += 1
        elif entry.reason == LedgerReason.PURCHASE_REFUND:
            purchases[entry.payment_charge_id or ""] -= 1

    active: Counter[int] = Counter()
    for generation in generations:
        gid = generation.generation_id
        if generation.status in ACTIVE_STATUSES:
            active[int(generation.user_id)] += 1
        if charges[gid] != 1:
            problems.append(f"generation {gid} charged {charges[gid]} times")
        expected_refunds = 1 if generation.status in REFUNDED_STATUSES else 0
        if refunds[gid] != expected_refunds:
            problems.append(f"generation {gid} ({generation.status}) refunded {refunds[gid]} times")
        if generation.status in ACTIVE_STATUSES and generation.sweep_shard is None:
            problems.append(f"generation {gid} is {generation.status} but invisible to the sweeper")
    known = {generation.generation_id for generation in generations}
    for gid in set(charges) | set(refunds):
        if gid not in known:
            problems.append(f"ledger names unknown generation {gid}")

    for user_id, user in users.items():
        credits = int(user.credits)
        if credits < 0:
            problems.append(f"user {user_id} has a negative balance {credits}")
        if credits != balance_from_ledger[user_id]:
            problems.append(f"user {user_id} balance {credits} != ledger sum {balance_from_ledger[user_id]}")
        if int(user.active_generations) != active[user_id]:
            problems.append(
                f"user {user_id} active_generations {int(user.active_generations)} != {active[user_id]} unfinished"
            )
    for user_id in set(balance_from_ledger) - set(users):
        problems.append(f"ledger entries for unknown user {user_id}")

    for payment in payments:
        expected = 1 if payment.status == PaymentStatus.CREDITED else 0
        if purchases[payment.charge_id] != expected:
            problems.append(f"payment {payment.charge_id} ({payment.status}) credited {purchases[payment.charge_id]}x")
    return problems
