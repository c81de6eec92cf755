"""Configuration: every environment variable NanoGen reads, in one place.

Read once per process (``get_settings``), typed, with the defaults of
CONTRACT §2. A bad value raises ``ConfigurationError`` naming the variable,
so a misconfigured Lambda fails loudly at its first request instead of
misbehaving later.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from chalicelib.errors import ConfigurationError

# Used when TELEGRAM_BOT_TOKEN is unset outside AWS (``make run``, tests).
# It is public on purpose: nothing signed with it is worth anything, and with
# it the Telegram client only logs what it would send.
DEV_BOT_TOKEN = "1000000001:NanoGenLocalDevelopmentTokenNotSecret"  # noqa: S105 - public by design

_WEBHOOK_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# The bot's languages (chalicelib.i18n.LANGUAGES, spelled here so config imports nothing).
LANGUAGES = ("ru", "en")


# The shortest ADMIN_API_TOKEN accepted (CONTRACT §2): it guards every admin route.
MIN_ADMIN_TOKEN_CHARS = 32


@dataclass(frozen=True)
class Settings:
    # Secrets are left out of the repr, so a logged or printed Settings shows none of them.
    telegram_bot_token: str = field(repr=False)
    telegram_dry_run: bool  # True with the dev token: log Bot API calls, send nothing
    telegram_webhook_secret: str | None = field(repr=False)
    telegram_api_base: str
    mini_app_url: str | None
    aiml_api_key: str | None = field(repr=False)
    aiml_api_base: str
    admin_api_token: str | None = field(repr=False)
    admin_user_ids: frozenset[int]
    alert_chat_id: str | None
    welcome_credits: int
    init_data_max_age_seconds: int
    admin_init_data_max_age_seconds: int  # a shorter session for admins signing in with initData
    rate_limit_per_minute: int
    max_active_generations: int
    generation_timeout_seconds: int
    port: int
    upload_max_bytes: int  # the largest reference image (Mini App upload or Telegram copy)
    # Resource names: set by the deployment, defaulted from the stage locally.
    stage: str
    users_table: str
    generations_table: str
    ledger_table: str
    payments_table: str
    guards_table: str
    generation_queue_url: str | None
    generation_queue_name: str
    dead_letter_queue_name: str
    results_bucket: str
    # Growth (promo codes, referrals, broadcasts).
    bot_username: str | None  # for referral links; None: asked of Telegram (getMe) once
    referral_bonus_credits: int  # 0 turns referrals off
    broadcast_rate_per_second: int
    growth_table: str
    broadcast_queue_url: str | None
    broadcast_queue_name: str
    # Operator-tunable model costs: {"model id": credits}, from MODEL_COSTS.
    model_costs: Mapping[str, int] = field(default_factory=dict)
    in_aws: bool = False  # running as a Lambda function (AWS_LAMBDA_FUNCTION_NAME is set)
    # The bot's language for users whose Telegram language is not supported (CONTRACT §8).
    default_language: str = "en"
    support_contact: str | None = None  # /paysupport: "@username" or a URL
    terms_url: str | None = None  # /terms: the operator's terms; None: the built-in text


def _running_in_lambda(env: Mapping[str, str]) -> bool:
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))


class _Reader:
    """Reads variables from one environment mapping, naming any bad one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(name, "").strip()
        return value or default

    def integer(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise ConfigurationError(f"{name} must be {bounds}, got {value}")
        return value

    def url(self, name: str, default: str | None, *, https_only: bool = False) -> str | None:
        value = self.text(name, default)
        if value is None:
            return None
        if not re.match(r"^https://[^\s/]+" if https_only else r"^https?://[^\s/]+", value):
            raise ConfigurationError(f"{name} must be an {'https' if https_only else 'http(s)'} URL, got {value!r}")
        return value.rstrip("/")

    def id_list(self, name: str) -> frozenset[int]:
        raw = self.text(name) or ""
        ids = set()
        for part in raw.split(","):
            part = part.strip()
            if not part:
                continue
            if not re.fullmatch(r"-?\d{1,20}", part):
                raise ConfigurationError(f"{name} must be comma-separated Telegram ids, got {part!r}")
            ids.add(int(part))
        return frozenset(ids)

    def costs(self, name: str) -> dict[str, int]:
        """``MODEL_COSTS="google/gemini-2.5-flash-image=2,google/nano-banana-pro=5"``."""
        raw = self.text(name) or ""
        costs: dict[str, int] = {}
        for part in raw.split(","):
            part = part.strip()
            if not part:
                continue
            model, sep, cost = part.partition("=")
            if not sep or not model.strip() or not cost.strip().isdigit() or int(cost) < 1:
                raise ConfigurationError(f"{name} entries must look like model=positive_int, got {part!r}")
            costs[model.strip()] = int(cost)
        return costs


SECRET_VARIABLES = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "AIML_API_KEY", "ADMIN_API_TOKEN")
# Read from SSM like the secrets though not secret: the stack sets it, and the
# API function cannot reference the Mini App's CloudFront distribution in
# its environment (the distribution references the API: a cycle).
PARAMETER_VARIABLES = (*SECRET_VARIABLES, "MINI_APP_URL")
SECRET_CACHE_SECONDS = 300


def _with_secrets(env: Mapping[str, str]) -> Mapping[str, str]:
    """Fill secret variables from SSM Parameter Store where ``<NAME>_PARAMETER`` names one.

    In AWS the template passes only parameter *names*; the values are read
    here with Powertools Parameters (one GetParameters call, cached), so
    they never appear in the template, the function configuration or the repo.
    """
    wanted = {
        env[f"{name}_PARAMETER"]: name
        for name in PARAMETER_VARIABLES
        if not env.get(name, "").strip() and env.get(f"{name}_PARAMETER", "").strip()
    }
    if not wanted:
        return env
    from aws_lambda_powertools.utilities.parameters import get_parameters_by_name

    try:
        values = get_parameters_by_name(
            parameters={parameter: {} for parameter in wanted},
            decrypt=True,
            max_age=SECRET_CACHE_SECONDS,
            raise_on_error=False,
        )
    except Exception as error:
        raise ConfigurationError(f"could not read secrets from SSM ({type(error).__name__})") from None
    resolved = dict(env)
    for parameter, name in wanted.items():
        # A parameter that does not exist leaves its variable unset: optional
        # secrets (the admin token) stay optional; a missing bot token is
        # refused below, naming the variable.
        if parameter in values and parameter != "_errors":
            resolved[name] = str(values[parameter])
    return resolved


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build ``Settings`` from ``env`` (default: ``os.environ``), secrets from SSM where configured."""
    env = _with_secrets(os.environ if env is None else env)
    read = _Reader(env)

    token = read.text("TELEGRAM_BOT_TOKEN")
    if token is None and _running_in_lambda(env):
        raise ConfigurationError("TELEGRAM_BOT_TOKEN is required in AWS")
    if token is not None and not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", token):
        raise ConfigurationError("TELEGRAM_BOT_TOKEN does not look like a bot token (<id>:<secret>)")

    secret = read.text("TELEGRAM_WEBHOOK_SECRET")
    if secret is not None and not _WEBHOOK_SECRET_RE.match(secret):
        raise ConfigurationError("TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z a-z 0-9 _ -")

    admin_token = read.text("ADMIN_API_TOKEN")
    if admin_token is not None and len(admin_token) < MIN_ADMIN_TOKEN_CHARS:
        raise ConfigurationError(
            f"ADMIN_API_TOKEN must be at least {MIN_ADMIN_TOKEN_CHARS} characters (got {len(admin_token)}); "
            "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )

    alert_chat = read.text("ALERT_CHAT_ID")
    if alert_chat is not None and not re.fullmatch(r"-?\d{1,20}|@[A-Za-z0-9_]{5,32}", alert_chat):
        raise ConfigurationError(f"ALERT_CHAT_ID must be a chat id or @channelname, got {alert_chat!r}")

    bot_username = read.text("BOT_USERNAME")
    if bot_username is not None:
        bot_username = bot_username.removeprefix("@")
        if not re.fullmatch(r"[A-Za-z0-9_]{4,32}", bot_username):
            raise ConfigurationError(f"BOT_USERNAME must be a Telegram bot username, got {bot_username!r}")
    default_language = (read.text("DEFAULT_LANGUAGE", "en") or "en").lower()
    if default_language not in LANGUAGES:
        raise ConfigurationError(f"DEFAULT_LANGUAGE must be one of {', '.join(LANGUAGES)}, got {default_language!r}")

    support_contact = read.text("SUPPORT_CONTACT")
    if support_contact is not None and not (
        re.fullmatch(r"@[A-Za-z0-9_]{5,32}", support_contact) or re.fullmatch(r"https?://\S{1,500}", support_contact)
    ):
        raise ConfigurationError(f"SUPPORT_CONTACT must be an @username or an http(s) URL, got {support_contact!r}")

    stage = read.text("NANOGEN_STAGE", "local") or "local"
    if not re.fullmatch(r"[a-z0-9-]{1,20}", stage):
        raise ConfigurationError(f"NANOGEN_STAGE must be 1-20 of a-z 0-9 -, got {stage!r}")
    prefix = f"nanogen-{stage}"

    return Settings(
        telegram_bot_token=token or DEV_BOT_TOKEN,
        telegram_dry_run=token is None,
        telegram_webhook_secret=secret,
        telegram_api_base=read.url("TELEGRAM_API_BASE", "https://api.telegram.org") or "",
        # Telegram opens only https Mini Apps: an http URL would lose every greeting's button.
        mini_app_url=read.url("MINI_APP_URL", None, https_only=True),
        aiml_api_key=read.text("AIML_API_KEY"),
        aiml_api_base=read.url("AIML_API_BASE", "https://api.aimlapi.com") or "",
        admin_api_token=admin_token,
        admin_user_ids=read.id_list("ADMIN_USER_IDS"),
        alert_chat_id=alert_chat,
        welcome_credits=read.integer("WELCOME_CREDITS", 10, minimum=0, maximum=1_000_000),
        init_data_max_age_seconds=read.integer("INIT_DATA_MAX_AGE_SECONDS", 86400, minimum=1),
        admin_init_data_max_age_seconds=read.integer("ADMIN_INIT_DATA_MAX_AGE_SECONDS", 3600, minimum=1),
        rate_limit_per_minute=read.integer("RATE_LIMIT_PER_MINUTE", 10, minimum=1),
        max_active_generations=read.integer("MAX_ACTIVE_GENERATIONS", 2, minimum=1),
        generation_timeout_seconds=read.integer("GENERATION_TIMEOUT_SECONDS", 300, minimum=30),
        port=read.integer("PORT", 8000, minimum=1, maximum=65535),
        # S3 takes up to 5 GB in one POST; a reference picture needs far less than 100 MB.
        upload_max_bytes=read.integer("UPLOAD_MAX_BYTES", 10_485_760, minimum=1024, maximum=104_857_600),
        stage=stage,
        users_table=read.text("USERS_TABLE", f"{prefix}-users") or "",
        generations_table=read.text("GENERATIONS_TABLE", f"{prefix}-generations") or "",
        ledger_table=read.text("LEDGER_TABLE", f"{prefix}-ledger") or "",
        payments_table=read.text("PAYMENTS_TABLE", f"{prefix}-payments") or "",
        guards_table=read.text("GUARDS_TABLE", f"{prefix}-guards") or "",
        generation_queue_url=read.text("GENERATION_QUEUE_URL"),
        generation_queue_name=read.text("GENERATION_QUEUE_NAME", f"{prefix}-generations") or "",
        dead_letter_queue_name=read.text("DEAD_LETTER_QUEUE_NAME", f"{prefix}-generations-dlq") or "",
        results_bucket=read.text("RESULTS_BUCKET", f"{prefix}-results") or "",
        bot_username=bot_username,
        referral_bonus_credits=read.integer("REFERRAL_BONUS_CREDITS", 10, minimum=0, maximum=1_000_000),
        broadcast_rate_per_second=read.integer("BROADCAST_RATE_PER_SECOND", 25, minimum=1, maximum=1000),
        growth_table=read.text("GROWTH_TABLE", f"{prefix}-growth") or "",
        broadcast_queue_url=read.text("BROADCAST_QUEUE_URL"),
        broadcast_queue_name=read.text("BROADCAST_QUEUE_NAME", f"{prefix}-broadcasts") or "",
        model_costs=read.costs("MODEL_COSTS"),
        in_aws=_running_in_lambda(env),
        default_language=default_language,
        support_contact=support_contact,
        terms_url=read.url("TERMS_URL", None),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment)."""
    get_settings.cache_clear()
