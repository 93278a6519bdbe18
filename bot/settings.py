"""Settings from environment variables (prefix ``CLOSER_``) and an optional ``.env`` file.

Read once per process through :func:`get_settings`; an invalid value raises
``pydantic.ValidationError`` at start-up rather than on first use.
"""

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Process settings. Durations are in seconds."""

    model_config = SettingsConfigDict(env_prefix="CLOSER_", env_file=".env", extra="ignore")

    database_url: str = f"sqlite+aiosqlite:///{ROOT / 'var' / 'closer.db'}"
    knowledge_dir: Path = ROOT / "knowledge"
    rasa_url: str = "http://localhost:5005"
    rasa_timeout: float = 30.0
    console_host: str = "0.0.0.0"
    console_port: int = 8000
    max_message_chars: int = 2000
    default_phone_region: str = "AE"


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once. Raises pydantic.ValidationError for an invalid value."""
    return Settings()
