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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib import catalogue, money, queries, referrals
from chalicelib.auth import MAX_TELEGRAM_ID
from chalicelib.config import Settings
from chalicelib.errors import ApiError, InsufficientCredits, TelegramError, UserBanned
from chalicelib.model import GenerationStatus, Profile, StartResult
from chalicelib.observability import count, logger
from chalicelib.telegram import BotApi
from chalicelib.text import storable_text
from chalicelib.usecases.generation import order_generation
from chalicelib.validation import CHARGE_ID_RE, MAX_PROMPT_CHARS, is_chat_id, is_message_id, parse_generation_request

# Telegram's deep-link payload: https://t.me/<bot>?start=<1-64 of A-Z a-z 0-9 _ ->.
_START_PAYLOAD_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# "/command", "/command@SomeBot", each optionally followed by arguments.
_COMMAND_RE = re.compile(r"/([A-Za-z0-9_]{1,32})(?:@[A-Za-z0-9_]{1,64})?(?:\s+(.*))?", re.DOTALL)
# A chat that cannot receive our message (bot blocked, chat gone, query too old):
# re-sending the update would fail the same way for 24 h and hold back the chat.
_PERMANENT_TELEGRAM_CODES = frozenset({400, 403})

OPEN_APP_BUTTON_TEXT = "Open NanoGen"
PRE_CHECKOUT_UNKNOWN_PACK = "This offer is no longer available. Send /buy to see the current packs."
PRE_CHECKOUT_OTHER_BUYER = "This invoice was made for another Telegram account. Open the app to buy credits."
PRE_CHECKOUT_WRONG_PRICE = "The price of this pack has changed. Send /buy for a new invoice."
# Message fields that carry a file the bot may be asked to edit (chalicelib.photos).
_PICTURE_FIELDS = ("photo", "document", "sticker")
UNKNOWN_COMMAND = "I don't know that command. Send /help to see what I can do, or just write what I should draw."


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


# --------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------


def plan(update: Mapping[str, Any]) -> Action | None:
    """The action an update calls for, or None when it must have no effect at all.

    None for messages from bots, channel posts, edited messages, messages
    without text (other than payments), group chatter and update types the
    bot does not handle: the webhook then answers 200 without writing anything.
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
        if any(isinstance(raw.get(kind), (dict, list)) for kind in _PICTURE_FIELDS):
            return Action("picture", functools.partial(_picture, message=message, raw=raw))
        if message.text is None:
            return None
        if message.text.startswith("/"):
            return _command(message, message.text)
        return Action("prompt", functools.partial(_prompt, message=message, raw=raw))
    if "pre_checkout_query" in update:
        query = update["pre_checkout_query"]
        if not isinstance(query, dict) or not isinstance(query.get("id"), str) or _profile(query.get("from")) is None:
            return None
        return Action("pre_checkout_query", functools.partial(_answer_pre_checkout, query=query))
    return None


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


# --------------------------------------------------------------------------
# Replies
# --------------------------------------------------------------------------


def _say(
    bot: BotApi,
    chat_id: int,
    text: str,
    *,
    reply_to: int | None = None,
    markup: Mapping[str, Any] | None = None,
) -> None:
    """Send a reply; a chat that cannot take it is logged, anything else is raised so Telegram re-sends."""
    try:
        bot.send_message(chat_id, text, reply_markup=markup, reply_to_message_id=reply_to)
    except TelegramError as error:
        if error.error_code not in _PERMANENT_TELEGRAM_CODES:
            raise
        logger.warning("reply not delivered", extra={"error_code": error.error_code, "description": error.description})


def _credits(amount: int) -> str:
    return f"{amount} credit" if amount == 1 else f"{amount} credits"


def _open_app_markup(settings: Settings) -> dict[str, Any] | None:
    """The Mini App button; Telegram accepts only https URLs for it (an http one would lose the greeting)."""
    url = settings.mini_app_url
    if not url:
        return None
    if not url.startswith("https://"):
        logger.warning("MINI_APP_URL is not https; the bot shows no button")
        return None
    return {"inline_keyboard": [[{"text": OPEN_APP_BUTTON_TEXT, "web_app": {"url": url}}]]}


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


def _start(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    """Register (welcome credits once), greet with the balance, offer the Mini App."""
    payload = argument if _START_PAYLOAD_RE.fullmatch(argument) else None
    inviter = referrals.inviter_of(payload)
    user, created = money.register(message.sender, settings, start_payload=payload, invited_by=inviter)
    name = message.sender.first_name or "there"
    balance = f"Your balance: {_credits(int(user.credits))}."
    if created and settings.welcome_credits:
        lines = [f"Welcome to NanoGen, {name}!", f"You got {_credits(settings.welcome_credits)} to start. {balance}"]
    else:
        lines = [f"Welcome back, {name}!", balance]
    if user.banned:
        lines.append(UserBanned.default_message)
    lines.append("Send me a description of a picture and I will draw it with AI. /help lists prices and commands.")
    _say(bot, message.chat_id, "\n".join(lines), markup=_open_app_markup(settings))


def _balance(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    user = money.get_or_register(message.sender, settings)
    lines = [f"Your balance: {_credits(int(user.credits))}."]
    active = int(user.active_generations)
    if active:
        lines.append(f"Pictures in progress: {active}.")
    if user.banned:
        lines.append(UserBanned.default_message)
    else:
        lines.append("Send /buy to get more credits.")
    _say(bot, message.chat_id, "\n".join(lines))


def help_text(settings: Settings) -> str:
    """What the bot does, what it costs, and the commands."""
    default = catalogue.get_model(catalogue.DEFAULT_MODEL_ID, settings)
    prices = [f"• {model.name}: {_credits(model.cost)} per picture" for model in catalogue.models(settings)]
    return "\n".join(
        [
            "NanoGen draws pictures with AI.",
            f"Send me a description (up to {MAX_PROMPT_CHARS} characters) and the picture arrives in this chat. "
            f"Prompts sent here use {default.name}; the Mini App offers every model and picture editing.",
            "",
            "Prices:",
            *prices,
            "",
            "Commands:",
            "/start: welcome and your balance",
            "/balance: your credits",
            "/buy: buy credits with Telegram Stars",
            "/promo CODE: redeem a promo code",
            "/invite: your invitation link",
            "/help: this message",
            "",
            "A picture that cannot be made costs nothing: its credits come back.",
        ]
    )


def _help(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    _say(bot, message.chat_id, help_text(settings))


def _buy(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    """One Telegram Stars invoice per pack; the pack's payload comes back with the payment."""
    user = queries.get_user(message.sender.user_id)
    if user is not None and user.banned:
        _say(bot, message.chat_id, UserBanned.default_message)
        return
    for pack in catalogue.PACKS:
        try:
            bot.send_invoice(
                message.chat_id,
                title=pack.title,
                description=pack.description,
                payload=pack.payload,
                amount_stars=pack.stars,
                label=pack.title,
            )
        except TelegramError as error:
            if error.error_code not in _PERMANENT_TELEGRAM_CODES:
                raise
            logger.warning("invoice not delivered", extra={"error_code": error.error_code, "pack_id": pack.id})
            return


def _unknown_command(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    _say(bot, message.chat_id, UNKNOWN_COMMAND, reply_to=message.message_id)


_COMMANDS: dict[str, Callable[..., None]] = {
    "start": _start,
    "balance": _balance,
    "help": _help,
    "buy": _buy,
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
    """Validate like the API, order (charge once, queue), and say so (or why not)."""
    assert message.text is not None  # plan() sends only text messages here
    try:
        wanted = parse_generation_request({"prompt": message.text}, settings)
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
        )
    except ApiError as refused:
        _say(bot, message.chat_id, refusal_text(refused), reply_to=message.message_id)
        return
    try:
        _say(bot, message.chat_id, _queued_text(result, wanted.model.name), reply_to=message.message_id)
    except TelegramError as error:
        # The charge is made and the job queued: a re-sent update would only repeat the reply.
        logger.warning("queued reply not delivered", extra={"error_code": error.error_code})


def refusal_text(error: ApiError) -> str:
    """The API's error message, with the way out where there is one."""
    if isinstance(error, InsufficientCredits) and "/buy" not in error.message:
        return f"{error.message} Send /buy to get more credits."
    return error.message


def _queued_text(result: StartResult, model_name: str) -> str:
    generation = result.generation
    balance = "" if result.credits is None else f" Balance: {_credits(result.credits)}."
    if not result.replayed:
        return (
            f"Queued! {model_name} is drawing your picture; it will arrive in this chat shortly.\n"
            f"Cost: {_credits(int(generation.cost))}.{balance}"
        )
    if generation.status == GenerationStatus.COMPLETED:
        return f"This prompt was already drawn; the picture was sent to this chat.{balance}"
    if generation.status in (GenerationStatus.FAILED, GenerationStatus.CANCELLED):
        return f"This message's generation already ended ({generation.status}); send the prompt again.{balance}"
    return f"Your picture is queued and will arrive in this chat shortly; it was charged once.{balance}"


# --------------------------------------------------------------------------
# Telegram Stars payments
# --------------------------------------------------------------------------


def _answer_pre_checkout(bot: BotApi, settings: Settings, *, query: Mapping[str, Any]) -> None:
    """Accept only an invoice we issued, at its price, for a user who is not banned (within 10 s)."""
    sender = _profile(query.get("from"))
    assert sender is not None  # plan() checked it
    payload = query.get("invoice_payload")
    pack, buyer = catalogue.parse_payload(payload) if isinstance(payload, str) else (None, None)
    error: str | None = None
    if pack is None:
        error = PRE_CHECKOUT_UNKNOWN_PACK
    elif buyer is not None and buyer != sender.user_id:
        error = PRE_CHECKOUT_OTHER_BUYER
    elif not _pays_for(query, pack):
        error = PRE_CHECKOUT_WRONG_PRICE
    else:
        user = queries.get_user(sender.user_id)
        if user is not None and user.banned:
            error = UserBanned.default_message
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
    text = f"Thank you! {_credits(pack.credits)} added. Your balance: {_credits(balance)}."
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
# Growth: /promo and /invite (their texts in one place, for the language catalogues)
# --------------------------------------------------------------------------

# Keyed as in chalicelib/locales/*.ftl (promo-*, invite-*), for the catalogue lookup that replaces them.
PROMO_TEXTS = {
    "promo-usage": "Send the code after the command, for example: /promo SPRING",
    "promo-granted": "Code accepted: {credits} added. Your balance: {balance}.",
    "promo-unknown": "There is no such code, or it has expired.",
    "promo-already-redeemed": "You have already used this code.",
    "promo-exhausted": "This code has been used up.",
}
INVITE_TEXTS = {
    "invite-text": "Invite friends with your link: {link}\nWhen a friend makes their first purchase, you get {bonus}.\n"
    "Friends invited: {invited}. Credits earned: {earned}.",
    "invite-disabled": "Invitations are switched off right now.",
}


def _promo(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    from chalicelib.errors import AlreadyRedeemed, NotFound, PromoExhausted
    from chalicelib.validation import parse_promo_code

    code = parse_promo_code(argument) if argument else None
    if not argument:
        _say(bot, message.chat_id, PROMO_TEXTS["promo-usage"], reply_to=message.message_id)
        return
    try:
        if code is None:
            raise NotFound()
        redeemed = money.redeem_promo_code(message.sender, code, settings)
    except NotFound:
        text = PROMO_TEXTS["promo-unknown"]
    except AlreadyRedeemed:
        text = PROMO_TEXTS["promo-already-redeemed"]
    except PromoExhausted:
        text = PROMO_TEXTS["promo-exhausted"]
    except ApiError as refused:
        text = refusal_text(refused)
    else:
        count("PromoRedemptions")
        count("CreditsGranted", redeemed.granted)
        text = PROMO_TEXTS["promo-granted"].format(
            credits=_credits(redeemed.granted), balance=_credits(redeemed.credits)
        )
    _say(bot, message.chat_id, text, reply_to=message.message_id)


def _invite(bot: BotApi, settings: Settings, *, message: ChatMessage, argument: str) -> None:
    user = money.get_or_register(message.sender, settings)
    summary = referrals.summary(user, settings, bot)
    if summary["link"] is None:
        _say(bot, message.chat_id, INVITE_TEXTS["invite-disabled"])
        return
    text = INVITE_TEXTS["invite-text"].format(
        link=summary["link"],
        bonus=_credits(settings.referral_bonus_credits),
        invited=summary["invited"],
        earned=summary["earned"],
    )
    _say(bot, message.chat_id, text)


_COMMANDS.update(promo=_promo, invite=_invite)
