"""Configuration: CONTRACT §2's defaults, and a clear refusal of bad values."""

from __future__ import annotations

import pytest

from chalicelib.config import DEV_BOT_TOKEN, load_settings
from chalicelib.errors import ConfigurationError


def test_defaults_match_the_contract() -> None:
    settings = load_settings({})
    assert settings.telegram_bot_token == DEV_BOT_TOKEN and settings.telegram_dry_run
    assert settings.telegram_webhook_secret is None
    assert settings.telegram_api_base == "https://api.telegram.org"
    assert settings.mini_app_url is None
    assert settings.aiml_api_key is None
    assert settings.aiml_api_base == "https://api.aimlapi.com"
    assert settings.admin_api_token is None
    assert settings.admin_user_ids == frozenset()
    assert settings.alert_chat_id is None
    assert settings.welcome_credits == 10
    assert settings.init_data_max_age_seconds == 86400
    assert settings.rate_limit_per_minute == 10
    assert settings.max_active_generations == 2
    assert settings.generation_timeout_seconds == 300
    assert settings.port == 8000
    assert settings.users_table == "nanogen-local-users"
    assert settings.results_bucket == "nanogen-local-results"


def test_values_are_read_and_typed() -> None:
    settings = load_settings(
        {
            "TELEGRAM_BOT_TOKEN": "123:abc_DEF-ghi",
            "ADMIN_USER_IDS": " 1, 22 ,333 ",
            "WELCOME_CREDITS": "0",
            "TELEGRAM_API_BASE": "http://127.0.0.1:9999/",
            "MODEL_COSTS": "google/nano-banana-pro=7",
            "NANOGEN_STAGE": "prod",
            "USERS_TABLE": "custom-users",
        }
    )
    assert settings.telegram_bot_token == "123:abc_DEF-ghi" and not settings.telegram_dry_run
    assert settings.admin_user_ids == frozenset({1, 22, 333})
    assert settings.welcome_credits == 0
    assert settings.telegram_api_base == "http://127.0.0.1:9999"
    assert dict(settings.model_costs) == {"google/nano-banana-pro": 7}
    assert settings.users_table == "custom-users"
    assert settings.ledger_table == "nanogen-prod-ledger"


@pytest.mark.parametrize(
    ("name", "value", "mentions"),
    [
        ("WELCOME_CREDITS", "ten", "integer"),
        ("WELCOME_CREDITS", "-1", "between 0 and 1000000"),
        ("RATE_LIMIT_PER_MINUTE", "0", ">= 1"),
        ("MAX_ACTIVE_GENERATIONS", "1.5", "integer"),
        ("GENERATION_TIMEOUT_SECONDS", "5", ">= 30"),
        ("PORT", "70000", "between 1 and 65535"),
        ("INIT_DATA_MAX_AGE_SECONDS", "0", ">= 1"),
        ("ADMIN_USER_IDS", "1,abc", "Telegram ids"),
        ("TELEGRAM_API_BASE", "ftp://example.com", "http(s) URL"),
        ("MINI_APP_URL", "not a url", "https URL"),
        ("MINI_APP_URL", "http://app.example.com/nanogen", "https URL"),  # Telegram opens only https
        ("TELEGRAM_BOT_TOKEN", "no-colon-here", "bot token"),
        ("TELEGRAM_WEBHOOK_SECRET", "has spaces in it", "A-Z a-z 0-9"),
        ("ALERT_CHAT_ID", "chat!", "chat id"),
        ("MODEL_COSTS", "google/x=0", "model=positive_int"),
        ("NANOGEN_STAGE", "Prod_1", "NANOGEN_STAGE"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(name: str, value: str, mentions: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings({name: value})
    assert name in str(refused.value) or name == "TELEGRAM_BOT_TOKEN"
    assert mentions in str(refused.value)


def test_bot_token_is_required_in_aws() -> None:
    with pytest.raises(ConfigurationError, match="TELEGRAM_BOT_TOKEN is required"):
        load_settings({"AWS_LAMBDA_FUNCTION_NAME": "nanogen-dev"})
    assert load_settings({"AWS_LAMBDA_FUNCTION_NAME": "x", "TELEGRAM_BOT_TOKEN": "1:a"}).in_aws
    assert not load_settings({}).in_aws


SSM_ADMIN_TOKEN = "admin-from-ssm-0123456789abcdefghijklmnop"


def test_secrets_are_read_from_ssm_when_only_their_parameter_names_are_given() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        ssm.put_parameter(Name="/nanogen/dev/telegram-bot-token", Value="777:FromSsm", Type="SecureString")
        ssm.put_parameter(Name="/nanogen/dev/admin-api-token", Value=SSM_ADMIN_TOKEN, Type="SecureString")
        settings = load_settings(
            {
                "AWS_DEFAULT_REGION": "us-east-1",
                "TELEGRAM_BOT_TOKEN_PARAMETER": "/nanogen/dev/telegram-bot-token",
                "ADMIN_API_TOKEN_PARAMETER": "/nanogen/dev/admin-api-token",
                "ADMIN_API_TOKEN": "",
            }
        )
    assert settings.telegram_bot_token == "777:FromSsm" and not settings.telegram_dry_run
    assert settings.admin_api_token == SSM_ADMIN_TOKEN


def test_a_missing_optional_secret_parameter_leaves_it_unset_but_the_bot_token_is_required() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name="/nanogen/dev/telegram-bot-token", Value="777:FromSsm", Type="SecureString"
        )
        in_lambda = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": "nanogen-dev-sweeper"}
        settings = load_settings(
            {
                **in_lambda,
                "TELEGRAM_BOT_TOKEN_PARAMETER": "/nanogen/dev/telegram-bot-token",
                "ADMIN_API_TOKEN_PARAMETER": "/nanogen/dev/missing",
            }
        )
        assert settings.admin_api_token is None and settings.telegram_bot_token == "777:FromSsm"
        with pytest.raises(ConfigurationError, match="TELEGRAM_BOT_TOKEN is required"):
            load_settings({**in_lambda, "TELEGRAM_BOT_TOKEN_PARAMETER": "/nanogen/dev/absent"})


SECRETS = {
    "TELEGRAM_BOT_TOKEN": "123456:SecretBotTokenPartThatMustNotShow",
    "TELEGRAM_WEBHOOK_SECRET": "webhook-secret-that-must-not-show",
    "AIML_API_KEY": "aiml-key-that-must-not-show",
    "ADMIN_API_TOKEN": "admin-token-that-must-not-show-0123456789",
}


def test_the_repr_of_settings_shows_no_secret() -> None:
    settings = load_settings(SECRETS)

    shown = repr(settings) + str(settings)
    for name, value in SECRETS.items():
        assert value not in shown, name
        assert value.split(":")[-1] not in shown, name
    assert "telegram_api_base='https://api.telegram.org'" in shown  # the rest is still there to debug with
    assert settings.admin_api_token == SECRETS["ADMIN_API_TOKEN"]


def test_admin_init_data_max_age_defaults_to_an_hour() -> None:
    assert load_settings({}).admin_init_data_max_age_seconds == 3600
    assert load_settings({"ADMIN_INIT_DATA_MAX_AGE_SECONDS": "600"}).admin_init_data_max_age_seconds == 600
    with pytest.raises(ConfigurationError, match="ADMIN_INIT_DATA_MAX_AGE_SECONDS"):
        load_settings({"ADMIN_INIT_DATA_MAX_AGE_SECONDS": "0"})


@pytest.mark.parametrize("token", ["tiny", "short-admin-token", "a" * 31])
def test_an_admin_token_shorter_than_32_characters_is_refused(token: str) -> None:
    with pytest.raises(ConfigurationError, match="ADMIN_API_TOKEN must be at least 32 characters") as raised:
        load_settings({"ADMIN_API_TOKEN": token})
    assert token not in str(raised.value)


def test_an_admin_token_of_32_characters_is_accepted() -> None:
    assert load_settings({"ADMIN_API_TOKEN": "a" * 32}).admin_api_token == "a" * 32
    assert load_settings({"ADMIN_API_TOKEN": "  "}).admin_api_token is None  # unset: the admin API refuses everyone
