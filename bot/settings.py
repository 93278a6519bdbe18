"""Settings from environment variables (prefix ``CLOSER_``) and an optional ``.env`` file.

Read once per process through :func:`get_settings`; an invalid value raises
``pydantic.ValidationError`` at start-up rather than on first use.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Process settings. Durations are in seconds."""

    model_config = SettingsConfigDict(env_prefix="CLOSER_", env_file=".env", extra="ignore")

    # "production" refuses to start without the secrets that development generates under var/
    # (the Rasa API token, the action server token, the console key, the PII keys).
    environment: Literal["development", "production"] = "development"
    database_url: str = f"sqlite+aiosqlite:///{ROOT / 'var' / 'closer.db'}"
    knowledge_dir: Path = ROOT / "knowledge"
    rasa_url: str = "http://localhost:5005"
    rasa_timeout: float = 30.0
    console_host: str = "0.0.0.0"
    console_port: int = 8000
    max_message_chars: int = 2000
    default_phone_region: str = "AE"

    # Knowledge index (Chroma). Embedded PersistentClient under var/ unless chroma_host is set.
    chroma_path: Path = ROOT / "var" / "chroma"
    chroma_host: str | None = None
    chroma_port: int = 8000
    chroma_ssl: bool = False
    index_log_dir: Path = ROOT / "var" / "index-logs"
    chunk_max_chars: int = 1200
    chunk_overlap_chars: int = 150
    knowledge_language: str = "en"  # spaCy language code of the knowledge text, for BM25 tokens
    retrieval_top_k: int = 5
    answer_min_similarity: float = 0.40  # cosine of the best passage; below it Closer asks back
    product_min_similarity: float = 0.30  # cosine for a free-text product request with no filters

    # LLM through litellm; none configured (the default) means extractive answers.
    llm_model: str | None = None  # litellm model string, e.g. "openai/gpt-4o-mini"
    llm_api_key: str | None = None
    llm_api_base: str | None = None
    llm_fallbacks: list[str] = []
    llm_timeout: float = 20.0
    llm_retries: int = 1
    llm_max_tokens: int = 400

    # Quotes: PDF links point at the console, reachable by the customer at this address.
    public_url: str = "http://localhost:8000"

    # Managers' Telegram chat for escalations (unset: escalations are recorded, nobody is pinged).
    telegram_bot_token: str | None = None
    telegram_manager_chat_id: str | None = None
    telegram_api_base: str = "https://api.telegram.org"
    telegram_timeout: float = 10.0

    # CRM: "sql" (the business DB only, the default) or "hubspot" (also HubSpot, through an outbox).
    crm_provider: str = "sql"
    hubspot_token: str | None = None
    hubspot_api_base: str = "https://api.hubapi.com"
    hubspot_timeout: float = 10.0
    hubspot_pipeline: str = "default"
    crm_retry_max_s: float = 3600.0

    # Manager console. Rasa's tracker store, read-only (endpoints.yml's tracker_store, as a SQLAlchemy URL).
    tracker_database_url: str = f"sqlite+aiosqlite:///{ROOT / 'var' / 'tracker.db'}"
    # Key of the session cookies (32 url-safe base64 bytes, a Fernet key); unset: a key generated once
    # and kept in var/console-secret.key. Set it in production (several console replicas share it).
    console_secret_key: str | None = None
    console_session_max_age: int = 8 * 3600  # seconds
    console_secure_cookies: bool = False  # True behind HTTPS (production)
    rasa_results_dir: Path = ROOT / "results"  # `rasa test` reports
    project_root: Path = ROOT  # domain.yml, data/ and tests/stories/ the console's NLU export and test stories use


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once. Raises pydantic.ValidationError for an invalid value."""
    return Settings()
