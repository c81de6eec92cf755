"""Strategies for Telegram updates: messages, commands, prompts, pre-checkout queries, Stars payments, garbage."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from tests.conftest import TEST_WEBHOOK_SECRET
from tests.fuzz.values import (
    CHARGE_IDS,
    SECRET_HEADER,
    SURROGATE_NAMES,
    TEXT,
    JsonStrategy,
    fresh,
    json_values,
    known,
    telegram_text,
    weighted,
)

# ---------------------------------------------------------------------------
# Telegram updates
# ---------------------------------------------------------------------------

_update_ids = itertools.count(7_000_000)
_new_user_ids = itertools.count(5_000_000)  # users seen for the first time: registration writes their names
_new_charge_ids = itertools.count(1)
_idempotency_keys = itertools.count(1)
_message_ids = itertools.count(1)


def new_user_ids() -> st.SearchStrategy[int]:
    return fresh(lambda: next(_new_user_ids))


def telegram_user(user_ids: tuple[int, ...]) -> JsonStrategy:
    valid = st.builds(
        lambda user_id, name, lang: {
            "id": user_id,
            "is_bot": False,
            "first_name": telegram_text(name),
            "language_code": lang,
        },
        weighted((8, st.sampled_from(user_ids)), (2, new_user_ids())),
        weighted((4, st.just("Fuzz")), (3, TEXT), (2, st.sampled_from(SURROGATE_NAMES))),
        st.sampled_from(["en", "ru", "es"]),
    )
    odd = st.sampled_from(
        [
            {"id": 3001, "is_bot": True, "first_name": "Bot"},
            {"id": 3001, "first_name": "No is_bot"},
            {"id": "3001", "is_bot": False, "first_name": "String id"},
            {"id": 0, "is_bot": False, "first_name": "Zero"},
            {"id": 2**60, "is_bot": False, "first_name": "Huge"},
            {"is_bot": False, "first_name": "No id"},
        ]
    )
    return weighted((8, valid), (1, odd), (1, json_values(4)))


def command_texts() -> st.SearchStrategy[str]:
    commands = st.sampled_from(["/start", "/balance", "/help", "/buy", "/START", "/unknown", "/", "/start@NanoGenBot"])
    arguments = st.one_of(st.just(""), st.sampled_from([" ref_abc", " " + "x" * 65, " a b c", "\n", " 🦊"]), TEXT)
    return st.tuples(commands, arguments).map(lambda t: t[0] + t[1])


def message_texts() -> st.SearchStrategy[str | None]:
    return st.one_of(
        command_texts(),
        st.sampled_from(["a red fox in the snow", "  ", "x" * 2001, "\u0000", "a\x1bb", "🦊" * 10]),
        st.text(max_size=100),
        st.none(),
    )


def successful_payment() -> JsonStrategy:
    from chalicelib import catalogue

    packs = [(pack.payload, pack.stars) for pack in catalogue.PACKS]
    matching = st.sampled_from(packs).map(lambda p: {"invoice_payload": p[0], "total_amount": p[1], "currency": "XTR"})
    odd = st.fixed_dictionaries(
        {
            "invoice_payload": st.one_of(st.sampled_from([p for p, _ in packs]), TEXT, json_values(2)),
            "total_amount": st.one_of(st.sampled_from([s for _, s in packs]), st.integers(-5, 10_000), json_values(2)),
            "currency": st.sampled_from(["XTR", "USD", "", "xtr"]),
        }
    )
    charge = weighted(
        (6, st.sampled_from(CHARGE_IDS)),
        (2, fresh(lambda: f"fuzz-charge-new-{next(_new_charge_ids)}")),
        (1, st.sampled_from(["", "x" * 300, "charge\ud800"])),
        (1, TEXT),
        (1, json_values(2)),
    )
    provider = st.sampled_from(["p", "", "provider\udfff"])
    return st.tuples(weighted((2, matching), (1, odd)), charge, provider).map(
        lambda t: {
            **t[0],
            "telegram_payment_charge_id": telegram_text(t[1]),
            "provider_payment_charge_id": telegram_text(t[2]),
        }
    )


@st.composite
def telegram_message(draw: st.DrawFn, user_ids: tuple[int, ...]) -> Any:
    sender = draw(telegram_user(user_ids))
    chat_type = draw(st.sampled_from(["private", "private", "private", "group", "supergroup", "channel"]))
    sender_id = sender.get("id") if isinstance(sender, dict) else None
    chat_id = sender_id if chat_type == "private" and isinstance(sender_id, int) else -1001234567890
    message: dict[str, Any] = {
        "message_id": draw(weighted((8, st.just(next(_message_ids))), (1, st.integers(-1, 5)), (1, json_values(2)))),
        "date": int(time.time()),
        "from": sender,
        "chat": draw(weighted((9, st.just({"id": chat_id, "type": chat_type})), (1, json_values(3)))),
    }
    text = draw(message_texts())
    if text is not None:
        message["text"] = text
    if draw(st.integers(0, 3)) == 0:
        message["successful_payment"] = draw(successful_payment())
    if draw(st.integers(0, 9)) == 0:
        message.update(draw(st.dictionaries(TEXT, json_values(3), max_size=3)))
    return message


@st.composite
def pre_checkout_query(draw: st.DrawFn, user_ids: tuple[int, ...]) -> Any:
    from chalicelib import catalogue

    pack = draw(st.sampled_from(catalogue.PACKS))
    return {
        "id": draw(st.one_of(st.just("pcq-fuzz"), TEXT, json_values(2))),
        "from": draw(telegram_user(user_ids)),
        "currency": draw(st.sampled_from(["XTR", "XTR", "USD"])),
        "total_amount": draw(st.one_of(st.just(pack.stars), st.integers(-1, 1000))),
        "invoice_payload": draw(st.one_of(st.just(pack.payload), TEXT)),
    }


@st.composite
def telegram_updates(draw: st.DrawFn, user_ids: tuple[int, ...], seen_update_ids: Sequence[int]) -> Any:
    """A Telegram-like update: mostly well formed, sometimes not; update ids sometimes repeated."""
    update_id = draw(
        st.one_of(
            st.just(next(_update_ids)),
            st.just(next(_update_ids)),
            known(seen_update_ids, 0),
            st.sampled_from([0, -1, 2**53, 2**53 + 1, 2**64, 1.5, "1", None, True]),
        )
    )
    kind = draw(
        st.sampled_from(
            [
                "message",
                "message",
                "message",
                "edited_message",
                "channel_post",
                "edited_channel_post",
                "pre_checkout_query",
                "callback_query",
                "my_chat_member",
                "inline_query",
                "garbage",
            ]
        )
    )
    update: dict[str, Any] = {"update_id": update_id}
    if kind == "pre_checkout_query":
        update[kind] = draw(weighted((4, pre_checkout_query(user_ids)), (1, json_values(3))))
    elif kind == "garbage":
        update.update(draw(st.dictionaries(TEXT, json_values(4), max_size=4)))
    elif kind in ("callback_query", "inline_query", "my_chat_member"):
        update[kind] = {"id": "q", "from": draw(telegram_user(user_ids)), "data": draw(TEXT)}
    else:
        update[kind] = draw(weighted((8, telegram_message(user_ids)), (1, json_values(3))))
    if draw(st.integers(0, 19)) == 0:
        del update["update_id"]
    return update


def webhook_secrets() -> st.SearchStrategy[tuple[str, tuple[tuple[str, str], ...]]]:
    """``(kind, headers)``: ``ok`` with the right secret, ``bad`` otherwise."""
    right = st.sampled_from([SECRET_HEADER, SECRET_HEADER.lower(), SECRET_HEADER.upper()]).map(
        lambda name: ("ok", ((name, TEST_WEBHOOK_SECRET),))
    )
    wrong_value = st.one_of(
        st.sampled_from(
            [
                "",
                TEST_WEBHOOK_SECRET.upper(),
                TEST_WEBHOOK_SECRET[:-1],
                TEST_WEBHOOK_SECRET + "x",
                " " + TEST_WEBHOOK_SECRET,
            ]
        ),
        TEXT,
    ).filter(lambda value: value != TEST_WEBHOOK_SECRET)
    wrong = wrong_value.map(lambda value: ("bad", ((SECRET_HEADER, value),)))
    return weighted((8, right), (1, wrong), (1, st.just(("bad", ()))))
