"""Check the money invariants of CONTRACT §6 from the tables themselves.

Used after every test that touches the tables and after load and fuzz
runs. Reads everything (Scan), so it is for tests and benchmarks only.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from chalicelib.model import ACTIVE_STATUSES, REFUNDED_STATUSES, LedgerReason, PaymentStatus
from chalicelib.tables import (
    AdminCreditRecord,
    Broadcast,
    BroadcastDelivery,
    Generation,
    LedgerEntry,
    Payment,
    PromoCode,
    PromoRedemption,
    User,
)


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
    problems += promo_violations(ledger)
    problems += referral_violations(users, ledger)
    problems += broadcast_violations()
    problems += admin_credit_violations(ledger)
    return problems


def promo_violations(ledger: list[LedgerEntry]) -> list[str]:
    """Rule 6: a code grants at most once per user and at most ``max_uses`` times, each grant in the ledger."""
    problems: list[str] = []
    codes = {promo.code: promo for promo in PromoCode.scan(PromoCode.pk.startswith("promo#"), consistent_read=True)}
    redemptions = list(PromoRedemption.scan(PromoRedemption.pk.startswith("redeem#"), consistent_read=True))
    granted: Counter[tuple[str, int]] = Counter(
        (entry.promo_code or "", int(entry.user_id)) for entry in ledger if entry.reason == "promo"
    )
    redeemed: Counter[str] = Counter(redemption.code for redemption in redemptions)
    for code, promo in codes.items():
        if int(promo.uses) != redeemed[code]:
            problems.append(f"promo {code} counts {int(promo.uses)} uses but has {redeemed[code]} redemptions")
        if redeemed[code] > int(promo.max_uses):
            problems.append(f"promo {code} redeemed {redeemed[code]} times, more than its {int(promo.max_uses)} uses")
    for redemption in redemptions:
        key = (redemption.code, int(redemption.user_id))
        if redemption.code not in codes:
            problems.append(f"redemption of unknown promo {redemption.code}")
        if granted[key] != 1:
            problems.append(f"promo {key[0]} redeemed by user {key[1]} granted {granted[key]} times")
    redeemed_by = {(redemption.code, int(redemption.user_id)) for redemption in redemptions}
    for (code, user_id), times in granted.items():
        if times and (code, user_id) not in redeemed_by:
            problems.append(f"promo {code} granted to user {user_id} without a redemption")
    return problems


def referral_violations(users: dict[int, User], ledger: list[LedgerEntry]) -> list[str]:
    """Rule 7: a bonus at most once per invited user, to their inviter, after a purchase; nobody invites themselves."""
    problems: list[str] = []
    bonuses: Counter[int] = Counter()
    earned: Counter[int] = Counter()
    for entry in ledger:
        if entry.reason != "referral":
            continue
        invitee = users.get(int(entry.referred_user_id or 0))
        bonuses[int(entry.referred_user_id or 0)] += 1
        earned[int(entry.user_id)] += int(entry.delta)
        if invitee is None or invitee.invited_by is None or int(invitee.invited_by) != int(entry.user_id):
            problems.append(
                f"referral bonus to {int(entry.user_id)} for {entry.referred_user_id}, who they did not invite"
            )
        elif invitee.paid_at is None:
            problems.append(f"referral bonus for user {int(invitee.user_id)}, who never paid")
    invited: Counter[int] = Counter()
    for user_id, user in users.items():
        if user.invited_by is not None:
            invited[int(user.invited_by)] += 1
            if int(user.invited_by) == user_id:
                problems.append(f"user {user_id} invited themselves")
            elif int(user.invited_by) not in users:
                problems.append(f"user {user_id} invited by unknown user {int(user.invited_by)}")
        if bonuses[user_id] > 1:
            problems.append(f"user {user_id}'s first purchase paid {bonuses[user_id]} referral bonuses")
    for user_id, user in users.items():
        if int(user.invited_count or 0) != invited[user_id]:
            problems.append(
                f"user {user_id} invited_count {int(user.invited_count or 0)} != {invited[user_id]} invited"
            )
        if int(user.referral_earned or 0) != earned[user_id]:
            problems.append(
                f"user {user_id} referral_earned {int(user.referral_earned or 0)} != ledger {earned[user_id]}"
            )
    return problems


def broadcast_violations() -> list[str]:
    """Rule 8: one delivery per user and broadcast (its key), and the counters are the deliveries' outcomes."""
    problems: list[str] = []
    outcomes: Counter[tuple[str, str]] = Counter()
    for delivery in BroadcastDelivery.scan(BroadcastDelivery.pk.startswith("bcast#"), consistent_read=True):
        outcomes[(delivery.broadcast_id, delivery.state)] += 1
    for broadcast in Broadcast.scan(Broadcast.pk.startswith("broadcast#"), consistent_read=True):
        for state in ("sent", "failed", "blocked"):
            counted, recorded = int(getattr(broadcast, state)), outcomes[(broadcast.broadcast_id, state)]
            if counted != recorded:
                problems.append(
                    f"broadcast {broadcast.broadcast_id} counts {counted} {state}, deliveries say {recorded}"
                )
    return problems


def admin_credit_violations(ledger: list[LedgerEntry]) -> list[str]:
    """An operator's Idempotency-Key is recorded only with its change: its record names an admin entry."""
    admin_entries = {(int(entry.user_id), entry.entry_id) for entry in ledger if entry.reason == LedgerReason.ADMIN}
    problems: list[str] = []
    for record in AdminCreditRecord.scan(AdminCreditRecord.pk.startswith("idem-admin#"), consistent_read=True):
        user_id = int(record.pk.split("#", 2)[1])
        if (user_id, record.entry_id) not in admin_entries:
            problems.append(f"admin credit key {record.pk} names no admin ledger entry {record.entry_id}")
    return problems
