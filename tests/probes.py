"""One set of table probes for every test: what is stored, read back from the tables and the queue.

A test asserts what moved (balances, ledger entries, generations, guards,
queued jobs), not only what was answered.
"""

from __future__ import annotations

from chalicelib import aws, queries
from chalicelib.jobs import Job, generation_queue_url
from chalicelib.model import LedgerReason
from chalicelib.runtime import ready
from chalicelib.tables import Generation, LedgerEntry, ProcessedUpdate, User


def balance(user_id: int) -> int | None:
    """The stored balance, or None when there is no such user."""
    user = queries.get_user(user_id)
    return None if user is None else int(user.credits)


def stored_user(user_id: int) -> User:
    user = queries.get_user(user_id)
    assert user is not None, f"user {user_id} does not exist"
    return user


def ledger(user_id: int) -> list[tuple[int, str]]:
    """``(delta, reason)`` of each ledger entry, sorted: a multiset, since entries of one millisecond have no order."""
    return sorted((int(entry.delta), entry.reason) for entry in LedgerEntry.query(user_id))


def stored_generation(user_id: int, generation_id: str) -> Generation:
    generation = queries.get_generation(user_id, generation_id)
    assert generation is not None, f"generation {generation_id} of {user_id} does not exist"
    return generation


def snapshot() -> tuple[int, int, int, int]:
    """Item counts of users, generations, ledger and guards: "nothing was touched" is this unchanged."""
    from chalicelib.tables import _Guard

    return (
        sum(1 for _ in User.scan(consistent_read=True)),
        sum(1 for _ in Generation.scan(consistent_read=True)),
        sum(1 for _ in LedgerEntry.scan(consistent_read=True)),
        sum(1 for _ in _Guard.scan(consistent_read=True)),
    )


def users_snapshot() -> list[tuple[int, int, int, bool]]:
    """Every user's (id, credits, active_generations, banned)."""
    return sorted(
        (int(u.user_id), int(u.credits), int(u.active_generations), bool(u.banned))
        for u in User.scan(consistent_read=True)
    )


def queued_jobs() -> list[Job]:
    """Every job on the generation queue (received and deleted, so each call reads only new ones)."""
    sqs = aws.client("sqs")
    url = generation_queue_url(ready())
    jobs: list[Job] = []
    while True:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = answer.get("Messages", [])
        if not messages:
            return jobs
        for message in messages:
            jobs.append(Job.from_message(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def generations_of(user_id: int) -> list[Generation]:
    return list(Generation.query(user_id))


def charges_of(user_id: int) -> list[LedgerEntry]:
    return [entry for entry in LedgerEntry.query(user_id) if entry.reason == LedgerReason.GENERATION]


def processed(update_id: int) -> ProcessedUpdate | None:
    try:
        return ProcessedUpdate.get(ProcessedUpdate.key(update_id), consistent_read=True)
    except ProcessedUpdate.DoesNotExist:
        return None
