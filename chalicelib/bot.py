"""The Telegram bot: what NanoGen does with each update Telegram sends (CONTRACT §7).

Plain functions over a parsed update, a ``BotApi`` and ``Settings``.
``plan`` turns an update into an ``Action`` (or None: ignored); the webhook
handler authenticates and claims the update, then runs the action. A prompt
is ordered through ``chalicelib.usecases.generation`` like the API's; money
moves only through ``chalicelib.money``.

Every action is safe to run again, because Telegram re-sends an update
whose handling failed: registration grants the welcome credits once, a
prompt is charged once (its idempotency key is the chat and message id) and
a payment is credited once (its ``telegram_payment_charge_id``). A retry
can repeat a reply, never a money move.

The bot talks one to one: commands and prompts are answered in private
chats only (an invoice or a balance has no business in a group, and without
our own username we could not tell ``/buy@OtherBot`` from ``/buy@us``). A
payment is credited wherever its message arrives: money is never ignored.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib import buttons, catalogue, guards, money, queries, records, referrals
from chalicelib.auth import MAX_TELEGRAM_ID
from chalicelib.choices import Choices, choices_of
from chalicelib.config import Settings
from chalicelib.errors import (
    ApiError,
    InsufficientCredits,
    InvalidRequest,
    RateLimited,
    TelegramError,
    TooManyActive,
    UserBanned,
)
from chalicelib.i18n import t
from chalicelib.model import NOT_PICTURE_MEDIA, GenerationStatus, Profile, StartResult
from chalicelib.observability import count, logger
from chalicelib.tables import User
from chalicelib.telegram import BotApi, truncate
from chalicelib.text import storable_text
from chalicelib.usecases.generation import order_generation
from chalicelib.usecases.purchases import invoice_texts
from chalicelib.validation import (
    CHARGE_ID_RE,
    MAX_PROMPT_CHARS,
    is_chat_id,
    is_message_id,
    parse_generation_request,
    parse_settings_change,
)

# Telegram's deep-link payload: https://t.me/<bot>?start=<1-64 of A-Z a-z 0-9 _ ->.
_START_PAYLOAD_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# "/command", "/command@SomeBot", each optionally followed by arguments.
_COMMAND_RE = re.compile(r"/([A-Za-z0-9_]{1,32})(?:@[A-Za-z0-9_]{1,64})?(?:\s+(.*))?", re.DOTALL)
# A chat that cannot receive our message (bot blocked, chat gone, query too old,
# a message not modified): re-sending the update would fail the same way.
_PERMANENT_TELEGRAM_CODES = frozenset({400, 403})
HISTORY_ITEMS = 10
HISTORY_PROMPT_CHARS = 80
PAYSUPPORT_PURCHASES = 5
# One forwarded /paysupport request per user per window reaches the operator.
PAYSUPPORT_WINDOW_SECONDS = 900
_RATIOS_PER_ROW = 5
# Message fields that carry a file the bot may be asked to edit, or must say it cannot (chalicelib.photos).
_PICTURE_FIELDS = ("photo", "document", "sticker", *NOT_PICTURE_MEDIA)


@dataclass(frozen=True)
class Action:
    """What an update will do: ``kind`` for the log, ``run`` to do it."""

    kind: str
    run: Callable[[BotApi, Settings], None]


@dataclass(frozen=True)
class ChatMessage:
    """The parts of a Telegram ``message`` the bot uses."""

    message_id: int
    chat_id: int
    private: bool
    sender: Profile
    text: str | None
    payment: Mapping[str, Any] | None  # the ``successful_payment`` object


@dataclass(frozen=True)
class ButtonTap:
    """The parts of a ``callback_query`` the bot uses; ``chat_id``/``message_id`` of the tapped message."""

    query_id: str
    sender: Profile
    tap: buttons.Tap | None  # None: data we did not make
    chat_id: int | None
    message_id: int | None


# --------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------


def plan(update: Mapping[str, Any]) -> Action | None:
    """The action an update calls for, or None when it must have no effect at all.

    None for messages from bots, channel posts, messages without text (other
    than payments and media), group chatter and update types the bot does not
    handle: the webhook then answers 200 without writing anything. A button
    tap (``callback_query``) and an edited message are claimed like any
    update, so each acts once.
    """
    if "message" in update:
        message = _chat_message(update["message"])
        if message is None:
            return None
        if message.payment is not None:
            return Action("successful_payment", functools.partial(_credit_payment, message=message))
        if not message.private:
            return None
        raw = update["message"]
        command = _command_caption(raw)
        if command is not None:  # "/help" under a photo asks for help: it is not a paid edit instruction
            if "media_group_id" not in raw:
                return _command(message, command)
            # An album's caption sits on one of its photos: dropping that one would leave the others
            # waiting alone. The album stays whole and, without an instruction, asks for one.
            raw = {key: value for key, value in raw.items() if key not in ("caption", "caption_entities")}
        if any(isinstance(raw.get(kind), (dict, list)) for kind in _PICTURE_FIELDS):
            return Action("picture", functools.partial(_picture, message=message, raw=raw))
        if message.text is None:
            return None
        if message.text.startswith("/"):
            return _command(message, message.text)
        return Action("prompt", functools.partial(_prompt, message=message, raw=raw))
    if "edited_message" in update:
        edited = _chat_message(update["edited_message"])
        # Only a changed text or caption: a live location is "edited" every few seconds.
        if edited is None or not edited.private or not _has_words(update["edited_message"]):
            return None
        return Action("edited_message", functools.partial(_edited_message, message=edited))
    if "pre_checkout_query" in update:
        query = update["pre_checkout_query"]
        if not isinstance(query, dict) or not isinstance(query.get("id"), str) or _profile(query.get("from")) is None:
            return None
        return Action("pre_checkout_query", functools.partial(_answer_pre_checkout, query=query))
    if "callback_query" in update:
        tap = _button_tap(update["callback_query"])
        if tap is None:
            return None
        kind = tap.tap.kind if tap.tap is not None else "stale"
        return Action(f"callback:{kind}", functools.partial(_on_tap, tap=tap))
    return None


def _command_caption(raw: Mapping[str, Any]) -> str | None:
    """A media caption that is a command of ours ("/help", "/balance@NanoGenBot"), else None.

    Only a known command: any other caption, "/" or not, stays the edit's instruction.
    """
    caption = raw.get("caption")
    if not isinstance(caption, str):
        return None
    match = _COMMAND_RE.fullmatch(caption.strip())
    return caption.strip() if match is not None and match.group(1).lower() in _COMMANDS else None


def _has_words(raw: Mapping[str, Any]) -> bool:
    return any(isinstance(raw.get(key), str) and raw[key].strip() for key in ("text", "caption"))


def _command(message: ChatMessage, text: str) -> Action:
    match = _COMMAND_RE.fullmatch(text)
    name = match.group(1).lower() if match else ""
    step = _COMMANDS.get(name)
    if match is None or step is None:
        return Action("command:unknown", functools.partial(_unknown_command, message=message, argument=""))
    argument = (match.group(2) or "").strip()
    return Action(f"command:{name}", functools.partial(step, message=message, argument=argument))


# --------------------------------------------------------------------------
# Parsing: Telegram objects are checked field by field; a malformed one is ignored
# --------------------------------------------------------------------------


def _profile(sender: object) -> Profile | None:
    """The human behind ``from``; None for bots and anything malformed."""
    if not isinstance(sender, dict) or sender.get("is_bot") is not False:
        return None
    user_id = sender.get("id")
    if type(user_id) is not int or not 0 < user_id <= MAX_TELEGRAM_ID:
        return None

    def text(key: str) -> str | None:
        return storable_text(sender.get(key))

    return Profile(
        user_id=user_id,
        first_name=text("first_name") or "",
        last_name=text("last_name"),
        username=text("username"),
        language_code=text("language_code"),
    )


def _chat_message(raw: object) -> ChatMessage | None:
    if not isinstance(raw, dict):
        return None
    sender = _profile(raw.get("from"))
    chat = raw.get("chat")
    message_id = raw.get("message_id")
    if sender is None or not isinstance(chat, dict) or not is_message_id(message_id):
        return None
    chat_id = chat.get("id")
    if not is_chat_id(chat_id):
        return None  # no id Telegram sends; stored, it would break the write or the stats
    text = raw.get("text")
    payment = raw.get("successful_payment")
    return ChatMessage(
        message_id=message_id,
        chat_id=chat_id,
        private=chat.get("type") == "private",
        sender=sender,
        text=text if isinstance(text, str) and text.strip() else None,
        payment=payment if isinstance(payment, dict) else None,
    )


def _button_tap(raw: object) -> ButtonTap | None:
    """A tap from a person, with an id to answer; the message is optional (inline messages have none)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not 0 < len(raw["id"]) <= 128:
        return None
    sender = _profile(raw.get("from"))
    if sender is None:
        return None
    message = raw.get("message")
    chat_id = message_id = None
    if isinstance(message, dict) and isinstance(message.get("chat"), dict):
        chat = message["chat"]
        if is_chat_id(chat.get("id")) and is_message_id(message.get("message_id")) and chat.get("type") == "private":
            chat_id, message_id = chat["id"], message["message_id"]
    return ButtonTap(
        query_id=raw["id"], sender=sender, tap=buttons.parse(raw.get("data")), chat_id=chat_id, message_id=message_id
    )


# --------------------------------------------------------------------------
# The user and their language
# --------------------------------------------------------------------------


def _known_user(profile: Profile, settings: Settings) -> tuple[User, Choices]:
    """The user (registered on first sight), with Telegram's current language_code kept on it."""
    user = money.get_or_register(profile, settings)
    records.remember_language_code(user, profile.language_code)
    return user, choices_of(user, settings, language_code=profile.language_code)


def _language(profile: Profile, settings: Settings, user: User | None = None) -> str:
    return choices_of(user, settings, language_code=profile.language_code).language


# --------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------


def _permanent(error: TelegramError, what: str) -> None:
    """A chat that cannot take our message is logged; anything else is raised so Telegram re-sends."""
    if error.error_code not in _PERMANENT_TELEGRAM_CODES:
        raise error
    logger.warning(f"{what} not delivered", extra={"error_code": error.error_code, "description": error.description})


def _say(
    bot: BotApi,
    chat_id: int,
    text: str,
    *,
    reply_to: int | None = None,
    markup: Mapping[str, Any] | None = None,
) -> None:
    try:
        bot.send_message(chat_id, text, reply_markup=markup, reply_to_message_id=reply_to)
    except TelegramError as error:
        _permanent(error, "reply")


def _open_app_markup(settings: Settings, lang: str) -> dict[str, Any] | None:
    """The Mini App button (settings accept only an https MINI_APP_URL: Telegram refuses others)."""
    url = settings.mini_app_url
    if not url:
        return None
    return {"inline_keyboard": [[{"text": t(lang, "button-open-app"), "web_app": {"url": url}}]]}


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


def _start(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    """Register (welcome credits once), greet with the balance, offer the Mini App."""
    payload = argument if _START_PAYLOAD_RE.fullmatch(argument) else None
    inviter = referrals.inviter_of(payload)
    user, created = money.register(message.sender, settings, start_payload=payload, invited_by=inviter)
    if not created:
        records.remember_language_code(user, message.sender.language_code)
    lang = _language(message.sender, settings, user)
    if user.banned:  # no invitation to draw: only what a banned account may still do
        _say(bot, message.chat_id, t(lang, "account-banned"))
        return
    name = message.sender.first_name or t(lang, "start-default-name")
    if not created:
        greeting = t(lang, "start-greeting-back", name=name)
    elif settings.welcome_credits:
        greeting = t(lang, "start-greeting-new", name=name, welcome=settings.welcome_credits)
    else:
        greeting = t(lang, "start-greeting-new-no-gift", name=name)
    lines = [greeting, t(lang, "balance-line", balance=int(user.credits)), t(lang, "start-intro")]
    _say(bot, message.chat_id, "\n".join(lines), markup=_open_app_markup(settings, lang))


def _balance(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    user, choices = _known_user(message.sender, settings)
    lang = choices.language
    lines = [t(lang, "balance-line", balance=int(user.credits))]
    active = int(user.active_generations)
    if active:
        lines.append(t(lang, "balance-in-progress", active=active))
    lines.append(t(lang, "account-banned") if user.banned else t(lang, "balance-buy-hint"))
    _say(bot, message.chat_id, "\n".join(lines))


def help_text(settings: Settings, lang: str) -> str:
    """What the bot does (pictures from text, edits of photos), what it costs, and every command."""
    prices = [t(lang, "help-price-line", model=model.name, cost=model.cost) for model in catalogue.models(settings)]
    commands = [t(lang, "help-command-line", command=name, description=t(lang, f"command-{name}")) for name in MENU]
    return "\n".join(
        [
            t(lang, "help-intro", max_chars=MAX_PROMPT_CHARS),
            t(lang, "help-edit-photo"),
            "",
            t(lang, "help-prices-title"),
            *prices,
            "",
            t(lang, "help-commands-title"),
            *commands,
            "",
            t(lang, "help-refund-note"),
        ]
    )


def _help(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    _, choices = _known_user(message.sender, settings)
    _say(bot, message.chat_id, help_text(settings, choices.language))


def _buy(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    """One Telegram Stars invoice per pack; the pack's payload comes back with the payment."""
    user = queries.get_user(message.sender.user_id)
    lang = _language(message.sender, settings, user)
    if user is not None and user.banned:
        _say(bot, message.chat_id, t(lang, "account-banned"))
        return
    for pack in catalogue.PACKS:
        title, description = invoice_texts(pack, lang)
        try:
            bot.send_invoice(
                message.chat_id,
                title=title,
                description=description,
                payload=pack.payload,
                amount_stars=pack.stars,
                label=title,
            )
        except TelegramError as error:
            _permanent(error, "invoice")
            return


def _history(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    """The latest generations with their status and prompt."""
    _, choices = _known_user(message.sender, settings)
    lang = choices.language
    items, _ = queries.history_page(message.sender.user_id, limit=HISTORY_ITEMS, cursor=None)
    if not items:
        _say(bot, message.chat_id, t(lang, "history-empty"))
        return
    lines = [t(lang, "history-title")]
    for number, generation in enumerate(items, start=1):
        status = t(lang, "generation-status", status=str(generation.status))
        prompt = truncate(" ".join(str(generation.prompt).split()), HISTORY_PROMPT_CHARS)
        lines.append(t(lang, "history-item", number=number, status=status, prompt=prompt))
    _say(bot, message.chat_id, "\n".join(lines))


def short_charge_id(charge_id: str) -> str:
    """Enough of a Telegram charge id to find the payment, short enough to read."""
    return charge_id if len(charge_id) <= 14 else f"{charge_id[:6]}…{charge_id[-6:]}"


def _paysupport(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    """Who helps with payments, the user's latest purchases, and the request forwarded to the operator."""
    _, choices = _known_user(message.sender, settings)
    lang = choices.language
    if not settings.support_contact and not settings.alert_chat_id:
        _say(bot, message.chat_id, t(lang, "paysupport-unavailable"))
        return
    purchases = queries.latest_purchases(message.sender.user_id, PAYSUPPORT_PURCHASES)

    def listed(in_lang: str) -> list[str]:
        return [
            t(
                in_lang,
                "paysupport-purchase-item",
                date=str(payment.created_at)[:10],
                credits=int(payment.credits),
                stars=int(payment.stars),
                charge_id=short_charge_id(str(payment.charge_id)),
            )
            for payment in purchases
        ]

    lines = []
    if settings.support_contact:
        # "Include the payment's code" only when there are codes to include.
        contact = "paysupport-contact-with-purchases" if purchases else "paysupport-contact"
        lines.append(t(lang, contact, contact=settings.support_contact))
    if purchases:
        lines += [t(lang, "paysupport-purchases-title"), *listed(lang)]
    else:
        lines.append(t(lang, "paysupport-no-purchases"))
    if settings.alert_chat_id:
        operator = settings.default_language
        sender = message.sender
        name = " ".join(part for part in (sender.first_name, sender.last_name) if part) or str(sender.user_id)
        if sender.username:
            name = f"{name} (@{sender.username})"
        request = t(
            operator,
            "paysupport-operator",
            name=name,
            user_id=str(sender.user_id),
            link=f"tg://user?id={sender.user_id}",
            purchases="\n".join(listed(operator)) or t(operator, "paysupport-no-purchases"),
        )
        # At most one forwarded request per user per window: /paysupport cannot flood the operator.
        if guards.count_alert(
            f"paysupport-{sender.user_id}", window_seconds=PAYSUPPORT_WINDOW_SECONDS, limit=1, now=time.time()
        ):
            try:
                bot.send_message(settings.alert_chat_id, request)
            except TelegramError as error:
                _permanent(error, "payment support request")
        lines.append(t(lang, "paysupport-forwarded"))
    _say(bot, message.chat_id, "\n".join(lines))


def _terms(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    _, choices = _known_user(message.sender, settings)
    lang = choices.language
    text = t(lang, "terms-link", url=settings.terms_url) if settings.terms_url else t(lang, "terms-builtin")
    _say(bot, message.chat_id, text)


def _unknown_command(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    lang = _language(message.sender, settings, queries.get_user(message.sender.user_id))
    _say(bot, message.chat_id, t(lang, "unknown-command"), reply_to=message.message_id)


def _edited_message(bot: BotApi, settings: Settings, *, message: ChatMessage) -> None:
    """An edit changes nothing (the message was acted on as first sent): say to send the fix anew. Free."""
    user = queries.get_user(message.sender.user_id)
    lang = _language(message.sender, settings, user)
    # A banned user is not invited to send anything new: the one text they get says what they can do.
    text_id = "account-banned" if user is not None and user.banned else "edited-message-ignored"
    _say(bot, message.chat_id, t(lang, text_id), reply_to=message.message_id)


# --------------------------------------------------------------------------
# /settings and /language: inline keyboards that edit their own message
# --------------------------------------------------------------------------


def _settings_screen(choices: Choices, screen: str, settings: Settings) -> tuple[str, dict[str, Any]]:
    """The text and keyboard of one /settings screen: ``menu``, ``models`` or ``ratios``."""
    lang = choices.language

    def marked(label: str, selected: bool) -> str:
        return t(lang, "button-selected", label=label) if selected else label

    back = [buttons.button(t(lang, "button-back"), "settings", "menu")]
    if screen == "models":
        rows = [
            [
                buttons.button(
                    marked(t(lang, "settings-model-option", model=model.name, cost=model.cost), model == choices.model),
                    "model",
                    model.id,
                )
            ]
            for model in catalogue.prompt_models(settings)
        ]
        return t(lang, "settings-choose-model"), {"inline_keyboard": [*rows, back]}
    if screen == "ratios":
        ratios = [
            buttons.button(marked(ratio, ratio == choices.aspect_ratio), "ratio", ratio)
            for ratio in choices.model.aspect_ratios
        ]
        rows = [ratios[i : i + _RATIOS_PER_ROW] for i in range(0, len(ratios), _RATIOS_PER_ROW)]
        return t(lang, "settings-choose-aspect-ratio"), {"inline_keyboard": [*rows, back]}
    text = t(
        lang,
        "settings-text",
        model=choices.model.name,
        aspect_ratio=choices.aspect_ratio,
        cost=choices.model.cost,
    )
    keyboard = [
        [buttons.button(t(lang, "settings-button-model", model=choices.model.name), "settings", "models")],
        [
            buttons.button(
                t(lang, "settings-button-aspect-ratio", aspect_ratio=choices.aspect_ratio), "settings", "ratios"
            )
        ],
    ]
    return text, {"inline_keyboard": keyboard}


def _settings(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    _, choices = _known_user(message.sender, settings)
    text, keyboard = _settings_screen(choices, "menu", settings)
    _say(bot, message.chat_id, text, markup=keyboard)


def _language_keyboard(lang: str) -> dict[str, Any]:
    def option(code: str) -> dict[str, str]:
        label = t(lang, f"language-button-{code}")
        return buttons.button(t(lang, "button-selected", label=label) if code == lang else label, "language", code)

    return {"inline_keyboard": [[option("ru"), option("en")]]}


def _language_command(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    _, choices = _known_user(message.sender, settings)
    _say(bot, message.chat_id, t(choices.language, "language-choose"), markup=_language_keyboard(choices.language))


# --------------------------------------------------------------------------
# Button taps
# --------------------------------------------------------------------------


def _answer(bot: BotApi, tap: ButtonTap, text: str | None = None, *, alert: bool = False) -> None:
    try:
        bot.answer_callback_query(tap.query_id, text, show_alert=alert)
    except TelegramError as error:
        _permanent(error, "callback answer")  # 400: the query is too old to answer


def _edit(bot: BotApi, tap: ButtonTap, text: str, keyboard: Mapping[str, Any] | None) -> None:
    """Change the tapped message in place (a 400 "message is not modified" is harmless)."""
    if tap.chat_id is None or tap.message_id is None:
        return
    try:
        bot.edit_message_text(tap.chat_id, tap.message_id, text, reply_markup=keyboard)
    except TelegramError as error:
        _permanent(error, "edited message")


def _on_tap(bot: BotApi, settings: Settings, *, tap: ButtonTap) -> None:
    """Every tap is answered; one we did not make, or that no longer applies, changes nothing."""
    user = queries.get_user(tap.sender.user_id)
    if user is None or tap.tap is None:
        _answer(bot, tap, t(_language(tap.sender, settings, user), "callback-stale"))
        return
    choices = choices_of(user, settings, language_code=tap.sender.language_code)
    handler = _TAPS[tap.tap.kind]
    if not handler(bot, settings, tap, user, choices, tap.tap.value):
        _answer(bot, tap, t(choices.language, "callback-stale"))


def _tap_language(bot: BotApi, settings: Settings, tap: ButtonTap, user: User, choices: Choices, value: str) -> bool:
    records.save_settings(int(user.user_id), language=value)
    _answer(bot, tap, t(value, "language-set"))
    _edit(bot, tap, t(value, "language-set"), _language_keyboard(value))
    return True


def _tap_screen(bot: BotApi, settings: Settings, tap: ButtonTap, user: User, choices: Choices, value: str) -> bool:
    text, keyboard = _settings_screen(choices, value, settings)
    _answer(bot, tap)
    _edit(bot, tap, text, keyboard)
    return True


def _tap_model(bot: BotApi, settings: Settings, tap: ButtonTap, user: User, choices: Choices, value: str) -> bool:
    if value not in {model.id for model in catalogue.prompt_models(settings)}:
        return False
    change = parse_settings_change(
        {"model": value}, settings, saved_model=user.model, saved_aspect_ratio=user.aspect_ratio
    )
    saved = records.save_settings(int(user.user_id), model=change.model, aspect_ratio=change.aspect_ratio)
    now = choices_of(saved, settings, language_code=tap.sender.language_code)
    lang = now.language
    if change.aspect_ratio is not None and choices.aspect_ratio != now.aspect_ratio:
        notice = t(
            lang,
            "settings-aspect-ratio-reset",
            model=now.model.name,
            aspect_ratio=choices.aspect_ratio,
            fallback=now.aspect_ratio,
        )
    else:
        notice = t(lang, "settings-saved")
    _answer(bot, tap, notice)
    _edit(bot, tap, *_settings_screen(now, "menu", settings))
    return True


def _tap_ratio(bot: BotApi, settings: Settings, tap: ButtonTap, user: User, choices: Choices, value: str) -> bool:
    if value not in choices.model.aspect_ratios:
        return False  # a button of another model's list: the model changed since
    saved = records.save_settings(int(user.user_id), model=choices.model.id, aspect_ratio=value)
    now = choices_of(saved, settings, language_code=tap.sender.language_code)
    _answer(bot, tap, t(now.language, "settings-saved"))
    _edit(bot, tap, *_settings_screen(now, "menu", settings))
    return True


# Taps of one "again" button this close together are one request (a double tap, two callback
# queries): charged once. A later tap is a new request, charged as new (CONTRACT §7).
AGAIN_DOUBLE_TAP_SECONDS = 10


def again_key(tap: ButtonTap, first_query_id: str) -> str:
    """The idempotency key of an "again" tap: its message and the tap it repeats (``guards.again_tap``)."""
    return f"again:{tap.chat_id}:{tap.message_id}:{first_query_id}"


def _tap_again(bot: BotApi, settings: Settings, tap: ButtonTap, user: User, choices: Choices, value: str) -> bool:
    """The same request once more, charged as new; an edit uses the same pictures while they are kept."""
    earlier = queries.get_generation(int(user.user_id), value)
    if earlier is None or tap.chat_id is None:
        return False
    lang = choices.language
    request: dict[str, Any] = {"prompt": earlier.prompt, "model": earlier.model, "aspect_ratio": earlier.aspect_ratio}
    if earlier.image_urls:
        request["image_urls"] = [str(url) for url in earlier.image_urls]
    if earlier.upload_ids:
        request["upload_ids"] = [str(upload_id) for upload_id in earlier.upload_ids]
    cost = 0
    try:
        wanted = parse_generation_request(request, settings)
        cost = wanted.model.cost
        if wanted.upload_ids and not _pictures_kept(int(user.user_id), wanted.upload_ids, settings):
            # The pictures it edited are no longer kept (uploads expire): say how to edit again.
            _answer(bot, tap, t(lang, "callback-again-pictures-gone"), alert=True)
            return True
        first_tap = _first_tap(tap)
        result = order_generation(
            tap.sender,
            wanted.order(),
            settings,
            chat_id=tap.chat_id,
            source="bot",
            idempotency_key=again_key(tap, first_tap),
            replay_any_status=True,
            language=lang,
        )
    except ApiError as refused:
        _answer(bot, tap, refusal_text(refused, lang, settings, cost=cost, balance=int(user.credits)), alert=True)
        return True
    if result.replayed and first_tap != tap.query_id:  # a double tap; its own re-send is answered as new
        _answer(bot, tap, t(lang, "callback-again-already"))
        return True
    _answer(bot, tap, t(lang, "callback-again-queued", cost=int(result.generation.cost)))
    return True


def _first_tap(tap: ButtonTap) -> str:
    """The query this tap repeats: a double tap's first, or (any other tap, or Telegram re-sending one) its own."""
    if tap.chat_id is None or tap.message_id is None:
        return tap.query_id
    return guards.again_tap(
        tap.chat_id, tap.message_id, tap.query_id, window_seconds=AGAIN_DOUBLE_TAP_SECONDS, now=time.time()
    )


def _pictures_kept(user_id: int, upload_ids: tuple[str, ...], settings: Settings) -> bool:
    from chalicelib import uploads  # S3: only for an edit's pictures

    return uploads.still_stored(user_id, upload_ids, settings)


def _tap_edit(bot: BotApi, settings: Settings, tap: ButtonTap, user: User, choices: Choices, value: str) -> bool:
    """Ask for an instruction: the picture waits, as a photo sent without a caption does (chalicelib.photos)."""
    from chalicelib import photos, uploads  # S3 and the edit flow: only on this path

    generation = queries.get_generation(int(user.user_id), value)
    if generation is None or generation.status != GenerationStatus.COMPLETED or not generation.result_keys:
        return False
    if tap.chat_id is None or tap.message_id is None:
        return False
    result_key = str(generation.result_keys[0])
    upload_id = uploads.copy_result(
        int(user.user_id),
        result_key,
        settings,
        upload_id=photos.derived_upload_id(time.time(), result_key, tap.query_id),
    )
    photos.remember_pending(int(user.user_id), tap.chat_id, tap.message_id, (upload_id,))
    _answer(bot, tap)
    _say(bot, tap.chat_id, t(choices.language, "edit-ask-instruction"), reply_to=tap.message_id)
    return True


def _tap_original(bot: BotApi, settings: Settings, tap: ButtonTap, user: User, choices: Choices, value: str) -> bool:
    """The stored full-size file as a document, free; once per tap (the tap is claimed once)."""
    from chalicelib import results  # S3: only on this path

    generation = queries.get_generation(int(user.user_id), value)
    if generation is None or generation.status != GenerationStatus.COMPLETED or not generation.result_keys:
        return False
    chat_id = tap.chat_id if tap.chat_id is not None else int(user.user_id)
    _answer(bot, tap, t(choices.language, "callback-original-sent"))
    images = results.load_images([str(key) for key in generation.result_keys], settings)
    for index, image in enumerate(images):
        filename = f"nanogen-{generation.generation_id}-{index}.{image.extension}"
        try:
            bot.send_document(chat_id, image.data, filename=filename)
        except TelegramError as error:
            _permanent(error, "original file")
            return True
    return True


_TAPS: dict[str, Callable[[BotApi, Settings, ButtonTap, User, Choices, str], bool]] = {
    "language": _tap_language,
    "settings": _tap_screen,
    "model": _tap_model,
    "ratio": _tap_ratio,
    buttons.AGAIN: _tap_again,
    buttons.EDIT: _tap_edit,
    buttons.ORIGINAL: _tap_original,
}

_COMMANDS: dict[str, Callable[..., None]] = {
    "start": _start,
    "balance": _balance,
    "buy": _buy,
    "settings": _settings,
    "language": _language_command,
    "history": _history,
    "paysupport": _paysupport,
    "terms": _terms,
    "help": _help,
}


# --------------------------------------------------------------------------
# A prompt: the same use case as POST /api/generation
# --------------------------------------------------------------------------


def _picture(bot: BotApi, settings: Settings, *, message: ChatMessage, raw: Mapping[str, Any]) -> None:
    """A photo, an image file or a sticker: an edit, or a clear refusal (chalicelib.photos)."""
    from chalicelib import photos

    photos.handle_picture_message(
        bot, settings, raw=raw, sender=message.sender, chat_id=message.chat_id, message_id=message.message_id
    )


def _prompt(bot: BotApi, settings: Settings, *, message: ChatMessage, raw: Mapping[str, Any]) -> None:
    """A text: an edit when it replies to a picture or a photo waits for it, else a new picture."""
    from chalicelib import photos

    assert message.text is not None  # plan() sends only text messages here
    if not photos.handle_text(
        bot,
        settings,
        raw=raw,
        sender=message.sender,
        chat_id=message.chat_id,
        message_id=message.message_id,
        text=message.text,
    ):
        _start_generation(bot, settings, message=message)


def idempotency_key(message: ChatMessage) -> str:
    """One message is one generation, however often Telegram delivers it."""
    return f"tg:{message.chat_id}:{message.message_id}"


def _start_generation(bot: BotApi, settings: Settings, *, message: ChatMessage) -> None:
    """Validate like the API with the user's settings, order (charge once, queue), and say so (or why not)."""
    assert message.text is not None  # plan() sends only text messages here
    user, choices = _known_user(message.sender, settings)
    lang = choices.language
    prompt = message.text.strip()
    if len(prompt) > MAX_PROMPT_CHARS:
        text = t(lang, "refusal-prompt-too-long", max_chars=MAX_PROMPT_CHARS, length=len(prompt))
        _say(bot, message.chat_id, text, reply_to=message.message_id)
        return
    cost = choices.model.cost
    try:
        wanted = parse_generation_request(
            {"prompt": message.text},
            settings,
            saved_model=choices.model.id,
            saved_aspect_ratio=choices.aspect_ratio,
        )
        cost = wanted.model.cost
        result = order_generation(
            message.sender,
            wanted.order(),
            settings,
            chat_id=message.chat_id,
            source="bot",
            idempotency_key=idempotency_key(message),
            # One message is one generation: a re-sent update must not start a
            # second one after the first failed or was cancelled (CONTRACT §6.5).
            replay_any_status=True,
            language=lang,
        )
    except ApiError as refused:
        text = refusal_text(refused, lang, settings, cost=cost, balance=int(user.credits))
        _say(bot, message.chat_id, text, reply_to=message.message_id)
        return
    try:
        _say(bot, message.chat_id, _queued_text(result, wanted.model.name, lang), reply_to=message.message_id)
    except TelegramError as error:
        # The charge is made and the job queued: a re-sent update would only repeat the reply.
        logger.warning("queued reply not delivered", extra={"error_code": error.error_code})


def refusal_text(error: ApiError, lang: str, settings: Settings, *, cost: int, balance: int | None = None) -> str:
    """Why a picture was not started, in the user's language, with the way out where there is one."""
    if isinstance(error, InsufficientCredits):
        text = t(lang, "refusal-insufficient-credits", cost=cost)
        return text if balance is None else f"{text}\n{t(lang, 'balance-line', balance=balance)}"
    if isinstance(error, RateLimited):
        return t(lang, "refusal-rate-limited", seconds=int(error.retry_after or 60))
    if isinstance(error, TooManyActive):
        return t(lang, "refusal-too-many-active", limit=settings.max_active_generations)
    if isinstance(error, UserBanned):
        return t(lang, "account-banned")
    if isinstance(error, InvalidRequest):
        return t(lang, "refusal-invalid-settings")
    return t(lang, "refusal-unknown")


def _queued_text(result: StartResult, model_name: str, lang: str) -> str:
    generation = result.generation
    if not result.replayed:
        text = t(lang, "generation-queued", model=model_name, cost=int(generation.cost))
    elif generation.status == GenerationStatus.COMPLETED:
        text = t(lang, "generation-replay-completed")
    elif generation.status in (GenerationStatus.FAILED, GenerationStatus.CANCELLED):
        text = t(lang, "generation-replay-ended", status=str(generation.status))
    else:
        text = t(lang, "generation-replay-queued")
    # The balance is read after the job is queued, best effort: left out when that read failed.
    return text if result.credits is None else f"{text} {t(lang, 'generation-balance', balance=result.credits)}"


# --------------------------------------------------------------------------
# Telegram Stars payments
# --------------------------------------------------------------------------


def _answer_pre_checkout(bot: BotApi, settings: Settings, *, query: Mapping[str, Any]) -> None:
    """Accept only an invoice we issued, at its price, for a user who is not banned (within 10 s)."""
    sender = _profile(query.get("from"))
    assert sender is not None  # plan() checked it
    payload = query.get("invoice_payload")
    pack, buyer = catalogue.parse_payload(payload) if isinstance(payload, str) else (None, None)
    user = queries.get_user(sender.user_id)
    lang = _language(sender, settings, user)
    error: str | None = None
    if pack is None:
        error = t(lang, "pre-checkout-unknown-pack")
    elif buyer is not None and buyer != sender.user_id:
        error = t(lang, "pre-checkout-other-buyer")
    elif not _pays_for(query, pack):
        error = t(lang, "pre-checkout-wrong-price")
    elif user is not None and user.banned:
        error = t(lang, "account-banned")
    if error is not None:
        logger.info("pre-checkout refused", extra={"reason": error, "user_id": sender.user_id})
    try:
        bot.answer_pre_checkout_query(str(query["id"]), ok=error is None, error_message=error)
    except TelegramError as failure:
        if failure.error_code not in _PERMANENT_TELEGRAM_CODES:
            raise
        logger.warning("pre-checkout answer refused", extra={"description": failure.description})


def _pack_of(payload: object) -> catalogue.CreditPack | None:
    return catalogue.pack_by_payload(payload) if isinstance(payload, str) else None


def _pays_for(paid: Mapping[str, Any], pack: catalogue.CreditPack) -> bool:
    """Exactly the pack's Stars: an integer, as Telegram sends it (``50.0 == 50`` and ``True == 1`` in Python)."""
    amount = paid.get("total_amount")
    return paid.get("currency") == "XTR" and type(amount) is int and amount == pack.stars


def _credit_payment(bot: BotApi, settings: Settings, *, message: ChatMessage) -> None:
    """Credit the pack once per charge id, then confirm; a repeated payment message does nothing."""
    payment = message.payment
    assert payment is not None  # plan() sends only payments here
    charge_id = payment.get("telegram_payment_charge_id")
    provider_charge_id = payment.get("provider_payment_charge_id")
    pack = _pack_of(payment.get("invoice_payload"))
    valid_charge = isinstance(charge_id, str) and CHARGE_ID_RE.fullmatch(charge_id) is not None
    if not valid_charge or pack is None or not _pays_for(payment, pack):
        _alert_unmatched_payment(bot, settings, message)
        return
    assert isinstance(charge_id, str)
    credited = money.credit_purchase(
        message.sender,
        settings,
        charge_id=charge_id,
        provider_charge_id=(
            provider_charge_id
            if isinstance(provider_charge_id, str) and CHARGE_ID_RE.fullmatch(provider_charge_id)
            else None
        ),
        pack_id=pack.id,
        credits=pack.credits,
        stars=pack.stars,
    )
    if not credited:
        logger.info("payment already credited", extra={"charge_id": charge_id})
        return
    count("PaymentsCredited")
    count("CreditsPurchased", pack.credits)
    user = queries.get_user(message.sender.user_id)
    balance = int(user.credits) if user is not None else pack.credits
    lang = _language(message.sender, settings, user)
    text = t(lang, "payment-credited", credits=pack.credits, balance=balance)
    try:
        bot.send_message(message.chat_id, text)
    except TelegramError as error:
        # The credit stands and a re-sent update would not confirm again: only log.
        logger.warning("payment confirmation not delivered", extra={"error_code": error.error_code})


def _alert_unmatched_payment(bot: BotApi, settings: Settings, message: ChatMessage) -> None:
    """Stars arrived for something we did not sell at that price: credit nothing, tell the operator."""
    from chalicelib.notify import alert_operator  # the worker's module: imported only on this rare path

    payment = message.payment or {}
    details = {
        key: payment.get(key) for key in ("telegram_payment_charge_id", "invoice_payload", "currency", "total_amount")
    }
    alert_operator(
        bot,
        settings,
        "unmatched_payment",
        f"payment by user {message.sender.user_id} matches no pack and was not credited: {details}",
    )


# --------------------------------------------------------------------------
# Growth: /promo and /invite
# --------------------------------------------------------------------------


def _promo(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    from chalicelib.errors import AlreadyRedeemed, NotFound, PromoExhausted
    from chalicelib.validation import parse_promo_code

    lang = _language(message.sender, settings, queries.get_user(message.sender.user_id))
    if not argument:
        _say(bot, message.chat_id, t(lang, "promo-usage"), reply_to=message.message_id)
        return
    code = parse_promo_code(argument)
    try:
        if code is None:
            raise NotFound()
        redeemed = money.redeem_promo_code(message.sender, code, settings)
    except NotFound:
        text = t(lang, "promo-unknown")
    except AlreadyRedeemed:
        text = t(lang, "promo-already-redeemed")
    except PromoExhausted:
        text = t(lang, "promo-exhausted")
    except ApiError as refused:
        text = refusal_text(refused, lang, settings, cost=0)
    else:
        count("PromoRedemptions")
        count("CreditsGranted", redeemed.granted)
        granted = t(lang, "promo-granted", credits=redeemed.granted, balance=redeemed.credits)
        try:
            _say(bot, message.chat_id, granted, reply_to=message.message_id)
        except TelegramError as error:
            # The credits are granted: a re-sent update would only answer "already used".
            logger.warning("promo reply not delivered", extra={"error_code": error.error_code})
        return
    _say(bot, message.chat_id, text, reply_to=message.message_id)


def _invite(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    user = money.get_or_register(message.sender, settings)
    lang = _language(message.sender, settings, user)
    summary = referrals.summary(user, settings, bot)
    if summary["link"] is None:
        _say(bot, message.chat_id, t(lang, "invite-disabled"))
        return
    text = t(
        lang,
        "invite-text",
        link=summary["link"],
        bonus=settings.referral_bonus_credits,
        invited=summary["invited"],
        earned=summary["earned"],
    )
    _say(bot, message.chat_id, text)


_COMMANDS.update(promo=_promo, invite=_invite)
# The command menu (setMyCommands) and /help's list, in CONTRACT §7's order; each has a command-<name> text.
MENU: tuple[str, ...] = (
    "start",
    "balance",
    "buy",
    "settings",
    "language",
    "history",
    "promo",
    "invite",
    "paysupport",
    "terms",
    "help",
)
