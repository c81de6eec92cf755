"""What every entry point does first: read settings and point the models at the tables."""

from __future__ import annotations

from chalicelib.config import Settings, get_settings
from chalicelib.tables import bind_tables


def ready() -> Settings:
    """Settings for this invocation, with the DynamoDB models bound (no AWS call)."""
    settings = get_settings()
    bind_tables(settings)
    return settings
