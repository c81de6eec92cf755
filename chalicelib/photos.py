"""Picture edits from the chat: photos, image files, albums, and replies to pictures (CONTRACT §7).

Where each step runs, and why:

* **In the webhook** (``plan`` / the actions): a photo is fetched from
  Telegram (``getFile``, then the file URL that carries the bot token,
  inside ``BotApi.download_file`` only) and copied to
  ``uploads/<user_id>/<upload_id>`` in the results bucket. That is one
  small request to Telegram and one PutObject, at most ``UPLOAD_MAX_BYTES``
  (10 MB), well inside the API Lambda's 15 s and Telegram's patience; doing
  it here lets the bot refuse a file that is not a picture, or too large,
  *before* anything is charged. A failed download raises, so Telegram
  re-sends the update (nothing was charged yet).
* **In the worker**: only the album check. Each photo of an album is its own
  update, in any order, possibly at once on several instances; each one
  marks itself arriving before its download, then appends itself to the
  album's record and queues a check delayed by ``ALBUM_QUIET_SECONDS``
  (SQS ``DelaySeconds``, never a sleep). The check whose version is still
  the album's latest, once no photo came for that long and none is still
  downloading, starts the one generation. A photo that comes after the
  start is not appended, and its sender is told (``too_late_for_album``).

Every text goes through the catalogues (``i18n.t``, the ``edit-*``
messages) in the sender's language (``choices_for``).

Every step is safe to repeat (Telegram re-sends an update whose handling
failed; SQS re-delivers a check): a copy's upload id is derived from the
message it came from, so a retry writes the same object and orders the same
generation, whose idempotency key (the chat and message, or the album)
charges it once.

The provider never sees a Telegram URL: the worker hands it presigned GET
URLs of our copies, or the bytes inline (``chalicelib.uploads``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib import catalogue, guards, jobs, queries, uploads
from chalicelib.choices import Choices, choices_of
from chalicelib.config import Settings
from chalicelib.errors import ApiError, InsufficientCredits, OutcomeUnknown, TelegramError
from chalicelib.i18n import Language, t
from chalicelib.jobs import Job
from chalicelib.model import NOT_PICTURE_MEDIA, GenerationStatus, Profile
from chalicelib.observability import count, logger
from chalicelib.telegram import BotApi
from chalicelib.usecases.generation import order_generation
from chalicelib.validation import MAX_PROMPT_CHARS, parse_generation_request

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # bots cannot download larger files
ALBUM_QUIET_SECONDS = 2  # an album is complete when no photo of it came for this long
# A photo announced as arriving but not appended for this long is given up on (its
# download failed and Telegram stopped re-sending it): the album starts without it.
ALBUM_ARRIVAL_SECONDS = 30
ALBUM_RECORD_SECONDS = 3600
PENDING_SECONDS = 3600  # a photo without an instruction waits this long for one
PICTURE_SECONDS = 30 * 24 * 3600  # how long a reply to a delivered result can edit it
_PERMANENT_TELEGRAM_CODES = frozenset({400, 403})
# Media with nothing to look at: a text replying to one cannot mean "change this", so it is a prompt.
_SOUND_MEDIA = frozenset({"voice", "audio"})
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# --------------------------------------------------------------------------
# What a message carries
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TelegramPicture:
    """A picture in a message: the largest size of a photo, or an image sent as a file."""

    file_id: str
    file_unique_id: str
    file_size: int | None


@dataclass(frozen=True)
class Refusal:
    """Why a picture will not be edited: a catalogue message (``edit-*``), said in the user's language."""

    message_id: str
    max_mb: int | None = None  # edit-too-large

    def text(self, lang: str) -> str:
        return t(lang, self.message_id) if self.max_mb is None else t(lang, self.message_id, max_mb=self.max_mb)


def _too_large(limit_bytes: int) -> Refusal:
    return Refusal("edit-too-large", max_mb=limit_bytes // (1024 * 1024))


DOWNLOAD_FAILED = Refusal("edit-download-failed")
# A voice message, audio, video, video note or GIF sent on its own (``model.NOT_PICTURE_MEDIA``).
NOT_UNDERSTOOD = Refusal("media-not-understood")


def picture_in(message: Mapping[str, Any], settings: Settings) -> TelegramPicture | Refusal | None:
    """The picture ``message`` carries, a ``Refusal`` for a file we will not edit, or None (no file at all)."""
    photo = message.get("photo")
    if isinstance(photo, list) and photo:
        sizes = [size for size in photo if isinstance(size, dict) and isinstance(size.get("file_id"), str)]
        if not sizes:
            return None
        # The last size is the largest; order by area anyway, whatever a client sends.
        largest = max(sizes, key=lambda size: _number(size.get("width")) * _number(size.get("height")))
        return _checked(largest, settings)
    if isinstance(message.get("sticker"), dict):
        return Refusal("edit-sticker-refused")
    if any(isinstance(message.get(kind), dict) for kind in NOT_PICTURE_MEDIA):
        # Sent on its own it may be a request by voice or a video: say that a text draws.
        return NOT_UNDERSTOOD
    document = message.get("document")
    if isinstance(document, dict) and isinstance(document.get("file_id"), str):
        if str(document.get("mime_type", "")).lower() not in uploads.CONTENT_TYPES:
            return Refusal("edit-not-an-image")
        return _checked(document, settings)
    return None


def _checked(file: Mapping[str, Any], settings: Settings) -> TelegramPicture | Refusal:
    size = file.get("file_size")
    file_size = size if type(size) is int else None
    limit = min(TELEGRAM_DOWNLOAD_LIMIT, settings.upload_max_bytes)
    if file_size is not None and file_size > limit:
        return _too_large(limit)
    return TelegramPicture(
        file_id=str(file["file_id"]),
        file_unique_id=str(file.get("file_unique_id") or file["file_id"]),
        file_size=file_size,
    )


def _number(value: object) -> int:
    return value if type(value) is int else 0


def media_group_of(message: Mapping[str, Any]) -> str | None:
    value = message.get("media_group_id")
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None


def caption_of(message: Mapping[str, Any]) -> str | None:
    caption = message.get("caption")
    return caption.strip() if isinstance(caption, str) and caption.strip() else None


# --------------------------------------------------------------------------
# Fetching and copying
# --------------------------------------------------------------------------


def derived_upload_id(when: float, *parts: object) -> str:
    """A ULID-shaped id that is the same for the same source: a retried update writes the same copy."""
    millis = int(when * 1000) & ((1 << 48) - 1)
    digest = int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:10], "big")
    value = (millis << 80) | digest
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class FetchRefused(Exception):
    """The picture cannot be used (too large, not a picture); ``refusal`` tells the user why."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
        super().__init__(refusal.message_id)


def copy_from_telegram(
    bot: BotApi, picture: TelegramPicture, user_id: int, settings: Settings, *, when: float, source: str
) -> str:
    """Download the picture server-side and copy it under the user's uploads; returns the upload id.

    Raises ``FetchRefused`` for what no retry can fix, ``TelegramError`` for what one may.
    """
    limit = min(TELEGRAM_DOWNLOAD_LIMIT, settings.upload_max_bytes)
    if bot.dry_run:  # the development token: nothing can be fetched from Telegram
        logger.info("dry run: a photo cannot be downloaded, so it is not edited")
        raise FetchRefused(DOWNLOAD_FAILED)
    try:
        file = bot.get_file(picture.file_id)
    except TelegramError as error:
        if error.error_code != 400:
            raise  # Telegram busy or unreachable: the re-sent update may succeed
        too_big = "too big" in error.description.lower()  # "Bad Request: file is too big"
        raise FetchRefused(_too_large(limit) if too_big else DOWNLOAD_FAILED) from None
    if not isinstance(file, dict):
        raise FetchRefused(DOWNLOAD_FAILED)
    size, file_path = file.get("file_size"), file.get("file_path")
    if type(size) is int and size > limit:
        raise FetchRefused(_too_large(limit))
    if not isinstance(file_path, str):
        raise FetchRefused(DOWNLOAD_FAILED)
    try:
        data = bot.download_file(file_path, max_bytes=limit)
    except TelegramError as error:
        if error.error_code == 413:
            raise FetchRefused(_too_large(limit)) from None
        raise
    content_type = uploads.sniff_image_type(data[:16])
    if content_type is None:
        raise FetchRefused(Refusal("edit-not-a-picture-file"))
    upload_id = derived_upload_id(when, source, picture.file_unique_id)
    uploads.store_copy(user_id, data, content_type, settings, upload_id=upload_id)
    count("TelegramPicturesCopied")
    return upload_id


# --------------------------------------------------------------------------
# Ordering an edit
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class EditOrder:
    sender: Profile
    chat_id: int
    reply_to: int | None
    prompt: str
    upload_ids: tuple[str, ...]
    idempotency_key: str
    choices: Choices  # the sender's language, model and aspect ratio
    claimed_by: int | None = None  # the text that took the waiting photos: they wait again if it is refused


def choices_for(sender: Profile, settings: Settings) -> Choices:
    """The sender's choices as they apply (one read): the language is theirs, else this update's
    Telegram language, else DEFAULT_LANGUAGE (CONTRACT §8); the model and ratio as for a prompt."""
    return choices_of(queries.get_user(sender.user_id), settings, language_code=sender.language_code)


def language_for(sender: Profile, settings: Settings) -> Language:
    return choices_for(sender, settings).language


def _hand_back(order: EditOrder) -> None:
    """A refused text leaves the waiting photos for the next one (after buying credits, say)."""
    if order.claimed_by is not None:
        guards.release_pending(order.chat_id, order.claimed_by)


def order_edit(bot: BotApi, settings: Settings, order: EditOrder, *, queue: bool = True) -> Job | None:
    """Charge once and queue the edit with the edit model paired with the user's model; say so, or why not.

    Pictures beyond the model's ``max_images`` are left out, and the reply
    says so. ``queue=False`` leaves running it to the caller (the worker's
    album check runs it at once instead of queueing it to itself): then the
    generation's job is returned whatever its status, new or replayed, since
    ``Worker.run`` is idempotent (a pending one is generated, a busy one is
    retried later, a completed but undelivered one is delivered, a finished
    one is skipped). A retried album check thus still delivers a generation
    whose first delivery was deferred. With ``queue=True`` the job of a
    pending generation is returned (None otherwise).
    """
    lang = order.choices.language
    model = catalogue.edit_model_for(order.choices.model.id, settings)
    aspect_ratio = order.choices.aspect_ratio
    if aspect_ratio not in model.aspect_ratios:
        aspect_ratio = model.default_aspect_ratio  # a saved ratio the edit model lacks
    used = order.upload_ids[: model.max_images]
    if len(order.prompt) > MAX_PROMPT_CHARS:  # said as the bot says it of a prompt, not as the API's 400
        too_long = t(lang, "refusal-prompt-too-long", max_chars=MAX_PROMPT_CHARS, length=len(order.prompt))
        _hand_back(order)
        reply(bot, order.chat_id, too_long, reply_to=order.reply_to)
        return None
    try:
        wanted = parse_generation_request(
            {"prompt": order.prompt, "model": model.id, "aspect_ratio": aspect_ratio, "upload_ids": list(used)},
            settings,
        )
        result = order_generation(
            order.sender,
            wanted.order(),
            settings,
            chat_id=order.chat_id,
            source="bot",
            idempotency_key=order.idempotency_key,
            replay_any_status=True,  # one message (or album) is one generation
            queue=queue,
            language=lang,  # the worker's notices about this edit
        )
    except ApiError as refused:
        from chalicelib.bot import refusal_text  # the bot's one wording of why a picture was not started

        balance = _balance(order.sender.user_id) if isinstance(refused, InsufficientCredits) else None
        text = refusal_text(refused, lang, settings, cost=model.cost, balance=balance)
        if not isinstance(refused, OutcomeUnknown):  # refused for sure, nothing charged: the photos still wait
            _hand_back(order)
        reply(bot, order.chat_id, text, reply_to=order.reply_to)
        return None
    generation = result.generation
    job = Job(int(generation.user_id), generation.generation_id)
    pending = job if not queue or generation.status == GenerationStatus.PENDING else None
    if result.replayed:
        if queue:  # the delivery that charged it queued it (or the sweeper re-queues it)
            replayed = _with_balance(t(lang, "edit-replay-queued"), lang, result.credits)
            reply(bot, order.chat_id, replayed, reply_to=order.reply_to)
        return pending
    count("EditsStarted")
    queued = t(lang, "edit-queued", model=model.name, pictures=len(used), cost=int(generation.cost))
    lines = [_with_balance(queued, lang, result.credits)]
    if len(order.upload_ids) > len(used):
        lines.append(t(lang, "edit-album-trimmed", model=model.name, max_images=len(used), sent=len(order.upload_ids)))
    try:
        reply(bot, order.chat_id, "\n".join(lines), reply_to=order.reply_to)
    except TelegramError as error:
        # Charged and queued: a re-sent update would only repeat the reply.
        logger.warning("queued reply not delivered", extra={"error_code": error.error_code})
    return pending


def _with_balance(text: str, lang: str, balance: int | None) -> str:
    """The balance after the debit is read best effort: left out when that read failed."""
    return text if balance is None else f"{text} {t(lang, 'generation-balance', balance=balance)}"


def _balance(user_id: int) -> int | None:
    user = queries.get_user(user_id)
    return None if user is None else int(user.credits)


def reply(bot: BotApi, chat_id: int, text: str, *, reply_to: int | None = None) -> None:
    """Send a reply; a chat that cannot take it is logged, anything else is raised (a retry may help)."""
    try:
        bot.send_message(chat_id, text, reply_to_message_id=reply_to)
    except TelegramError as error:
        if error.error_code not in _PERMANENT_TELEGRAM_CODES:
            raise
        logger.warning("reply not delivered", extra={"error_code": error.error_code})


# --------------------------------------------------------------------------
# The webhook's actions
# --------------------------------------------------------------------------


def handle_picture_message(
    bot: BotApi, settings: Settings, *, raw: Mapping[str, Any], sender: Profile, chat_id: int, message_id: int
) -> None:
    """A photo or image file: an edit (caption), an album member, or a picture waiting for its instruction."""
    found = picture_in(raw, settings)
    if found is None:
        return
    if isinstance(found, Refusal):
        reply(bot, chat_id, found.text(language_for(sender, settings)), reply_to=message_id)
        return
    when = _message_time(raw)
    album = media_group_of(raw)
    if album is not None:
        # Before the download (up to seconds, more on a cold start): the album's check
        # waits for this photo instead of starting the album without it. An album that
        # has started already is not downloaded for.
        collecting = guards.album_photo_arriving(
            chat_id,
            album,
            user_id=sender.user_id,
            message_id=message_id,
            now=time.time(),
            keep_seconds=ALBUM_RECORD_SECONDS,
        )
        if not collecting:
            too_late_for_album(bot, settings, sender, chat_id, album, message_id)
            return
    try:
        upload_id = copy_from_telegram(
            bot, found, sender.user_id, settings, when=when, source=f"tg:{chat_id}:{message_id}"
        )
    except FetchRefused as refused:
        if album is not None:
            guards.album_photo_dropped(chat_id, album, message_id)
        reply(bot, chat_id, refused.refusal.text(language_for(sender, settings)), reply_to=message_id)
        return
    caption = caption_of(raw)
    if album is not None:
        if not add_to_album(sender, chat_id, album, message_id, upload_id, caption, settings):
            too_late_for_album(bot, settings, sender, chat_id, album, message_id)  # it started during the download
        return
    if caption is None:
        remember_pending(sender.user_id, chat_id, message_id, [upload_id])
        reply(bot, chat_id, t(language_for(sender, settings), "edit-photo-remembered"), reply_to=message_id)
        return
    key = f"tg:{chat_id}:{message_id}"
    order_edit(
        bot, settings, EditOrder(sender, chat_id, message_id, caption, (upload_id,), key, choices_for(sender, settings))
    )


def handle_text(
    bot: BotApi,
    settings: Settings,
    *,
    raw: Mapping[str, Any],
    sender: Profile,
    chat_id: int,
    message_id: int,
    text: str,
) -> bool:
    """A text that edits a picture: a reply to one, or the instruction for a waiting photo.

    Returns False when the text is an ordinary prompt (the caller draws it).
    """
    key = f"tg:{chat_id}:{message_id}"
    replied = raw.get("reply_to_message")
    if isinstance(replied, dict):
        upload_ids = _pictures_replied_to(bot, settings, replied, sender, chat_id)
        if isinstance(upload_ids, Refusal):
            reply(bot, chat_id, upload_ids.text(language_for(sender, settings)), reply_to=message_id)
            return True
        if upload_ids is not None:
            order_edit(
                bot,
                settings,
                EditOrder(sender, chat_id, message_id, text, upload_ids, key, choices_for(sender, settings)),
            )
            return True
        # A reply to a message without a picture: an ordinary prompt (or a waiting photo's instruction).
    pending = take_pending(chat_id, message_id)
    if pending is None:
        return False
    choices = choices_for(sender, settings)
    order_edit(
        bot, settings, EditOrder(sender, chat_id, message_id, text, pending, key, choices, claimed_by=message_id)
    )
    return True


def _pictures_replied_to(
    bot: BotApi, settings: Settings, replied: Mapping[str, Any], sender: Profile, chat_id: int
) -> tuple[str, ...] | Refusal | None:
    """The pictures a reply asks to edit; a ``Refusal`` for something visual we cannot edit; None: nothing to edit.

    A reply to a voice message or audio is an ordinary prompt: nothing there could be changed, so the
    text can only be a description. A reply to a sticker, a video or a GIF most likely asks to change
    it: that is refused (free) rather than drawn from scratch and charged.
    """
    replied_id = replied.get("message_id")
    if type(replied_id) is not int:
        return None
    when = _message_time(replied)
    stored = guards.picture_shown(chat_id, replied_id)
    if stored is not None:
        try:
            return (uploads.copy_result(sender.user_id, stored, settings, upload_id=derived_upload_id(when, stored)),)
        except ApiError:
            return Refusal("edit-not-yours")
    if any(isinstance(replied.get(kind), dict) for kind in _SOUND_MEDIA):
        return None
    found = picture_in(replied, settings)
    if found is None:
        return None
    if found == NOT_UNDERSTOOD:
        return Refusal("edit-not-an-image")  # the user did write a text: "I can only edit pictures"
    if isinstance(found, Refusal):
        return found
    try:
        upload_id = copy_from_telegram(
            bot, found, sender.user_id, settings, when=when, source=f"tg:{chat_id}:{replied_id}"
        )
    except FetchRefused as refused:
        return refused.refusal
    return (upload_id,)


def _message_time(raw: Mapping[str, Any]) -> float:
    date = raw.get("date")
    return float(date) if type(date) is int and date > 0 else time.time()


# --------------------------------------------------------------------------
# A photo waiting for its instruction
# --------------------------------------------------------------------------


def remember_pending(user_id: int, chat_id: int, message_id: int, upload_ids: Sequence[str]) -> None:
    """The chat's latest photos without an instruction (a newer one replaces them), for an hour."""
    guards.remember_pending(user_id, chat_id, message_id, upload_ids, expires_at=int(time.time()) + PENDING_SECONDS)


def take_pending(chat_id: int, text_message_id: int) -> tuple[str, ...] | None:
    """The waiting photos, claimed for this text (only the next text: a re-sent one gets the same)."""
    return guards.take_pending(chat_id, text_message_id, now=time.time())


# --------------------------------------------------------------------------
# Albums
# --------------------------------------------------------------------------


def add_to_album(
    sender: Profile,
    chat_id: int,
    media_group_id: str,
    message_id: int,
    upload_id: str,
    caption: str | None,
    settings: Settings,
) -> bool:
    """Append this photo (one atomic UpdateItem) and queue the delayed check for the album's new version.

    False when the album had already started: nothing was appended (see ``too_late_for_album``).
    """
    version = guards.append_to_album(
        chat_id,
        media_group_id,
        user_id=sender.user_id,
        entry=f"{message_id}:{upload_id}",
        caption=caption,
        now=time.time(),
        keep_seconds=ALBUM_RECORD_SECONDS,
    )
    if version is None:
        return False
    check = {
        "chat_id": chat_id,
        "media_group_id": media_group_id,
        "version": version,
        "user": {
            "id": sender.user_id,
            "first_name": sender.first_name,
            "last_name": sender.last_name,
            "username": sender.username,
            "language_code": sender.language_code,
        },
    }
    jobs.send_album_check(check, ALBUM_QUIET_SECONDS, settings)
    return True


def too_late_for_album(
    bot: BotApi, settings: Settings, sender: Profile, chat_id: int, media_group_id: str, message_id: int
) -> None:
    """A photo of an album that has started without it: say so; it is neither charged nor generated.

    The album's start and a photo's append are conditional writes of the
    same item, so exactly one comes first: a photo appended before the start
    is in the album, and none is appended after it. A photo that made it
    in, whose update Telegram re-sends after the start, is not "late".
    """
    if guards.album_includes(chat_id, media_group_id, message_id):
        return
    count("AlbumPhotosTooLate")
    reply(bot, chat_id, t(language_for(sender, settings), "edit-album-photo-late"), reply_to=message_id)


def check_album(check: Mapping[str, Any], bot: BotApi, settings: Settings, *, now: float | None = None) -> Job | None:
    """The delayed check: start the album's one generation if this check is its latest and it is quiet.

    Returns the generation's job for the worker to run right away (the
    worker has no right to queue, and needs none), on every delivery of the
    check that started the album: a retried check runs the same job again,
    which is how a completed generation whose delivery failed is delivered.
    """
    from chalicelib.generate import RetryLater

    now = time.time() if now is None else now
    try:
        chat_id, media_group_id, version = int(check["chat_id"]), str(check["media_group_id"]), int(check["version"])
        sender = _profile_of(check["user"])
    except (KeyError, TypeError, ValueError):
        logger.error("dropping a malformed album check")
        return None
    album = guards.album(chat_id, media_group_id)
    if album is None:
        logger.info("album check for an album that is gone")
        return None
    if album.started_version is None:
        if int(album.version) != version:
            return None  # a later photo came; its own check decides
        quiet_for = now - float(album.last_photo_at)
        if quiet_for < ALBUM_QUIET_SECONDS:
            raise RetryLater("album still receiving photos", retry_after=ALBUM_QUIET_SECONDS - quiet_for)
        arriving_for = now - float(album.arrived_at or 0)
        if album.arriving and arriving_for < ALBUM_ARRIVAL_SECONDS:
            # A photo is still being downloaded: its append makes a newer version, whose
            # check decides; this one looks again in case that photo never comes.
            raise RetryLater(
                "an album photo is still being downloaded", retry_after=ALBUM_ARRIVAL_SECONDS - arriving_for
            )
        started = guards.start_album(chat_id, media_group_id, version)
        if started is None:
            return None  # a photo arrived meanwhile (its check decides) or another check started it
        album = started  # the update answered the whole item
    elif version > int(album.started_version):
        # Appends stop at the start (the late photo's sender was told in the webhook);
        # only a check queued before that rule was deployed can be newer.
        logger.info("album already started; a late photo is left out", extra={"version": version})
        return None
    elif version < int(album.started_version):
        return None  # an earlier photo's check
    # This check started the album (now or in an earlier delivery): order it (idempotent).
    entries = [str(entry) for entry in album.photos or []]
    upload_ids = album_upload_ids(entries)
    caption = album.caption
    first_message = min(int(entry.split(":", 1)[0]) for entry in entries or ["0:"])
    choices = choices_for(sender, settings)
    if caption is None:
        remember_pending(sender.user_id, chat_id, first_message, upload_ids)
        asked = t(choices.language, "edit-album-remembered", pictures=len(upload_ids))
        reply(bot, chat_id, asked, reply_to=first_message)
        return None
    return order_edit(
        bot,
        settings,
        EditOrder(sender, chat_id, first_message, caption, upload_ids, album_key(chat_id, media_group_id), choices),
        queue=False,
    )


def album_key(chat_id: int, media_group_id: str) -> str:
    """The album's idempotency key: one album is one generation."""
    return f"tg-album:{chat_id}:{media_group_id}"


def album_generation(check: Mapping[str, Any]) -> Job | None:
    """The job of the generation an album check ordered, or None (none ordered, or a malformed check)."""
    try:
        chat_id, media_group_id = int(check["chat_id"]), str(check["media_group_id"])
        user_id = int(check["user"]["id"])
    except (KeyError, TypeError, ValueError):
        return None
    record = guards.idempotency_record(user_id, album_key(chat_id, media_group_id), source="bot")
    return None if record is None else Job(user_id, str(record.generation_id))


def album_upload_ids(entries: Sequence[str]) -> tuple[str, ...]:
    """The album's uploads in the order the user sent them (message ids), each once."""
    by_message: dict[int, str] = {}
    for entry in entries:
        message_id, _, upload_id = str(entry).partition(":")
        by_message.setdefault(int(message_id), upload_id)
    return tuple(by_message[message_id] for message_id in sorted(by_message))


def _profile_of(user: Mapping[str, Any]) -> Profile:
    def text(name: str) -> str | None:
        value = user.get(name)
        return value if isinstance(value, str) else None

    return Profile(
        user_id=int(user["id"]),
        first_name=text("first_name") or "",
        last_name=text("last_name"),
        username=text("username"),
        language_code=text("language_code"),
    )


# --------------------------------------------------------------------------
# Which picture a chat message shows
# --------------------------------------------------------------------------


def remember_picture(chat_id: int, message_id: int, user_id: int, s3_key: str) -> None:
    """A delivered result: a reply to this message edits the stored picture. Best effort."""
    try:
        guards.remember_picture(
            chat_id, message_id, user_id=user_id, s3_key=s3_key, expires_at=int(time.time()) + PICTURE_SECONDS
        )
    except Exception:
        logger.exception("could not remember which picture a message shows")
