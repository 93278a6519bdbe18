"""Settings from environment variables (prefix ``CLOSER_``) and an optional ``.env`` file.

Read once per process through :func:`get_settings` (until :func:`bot.core.caches.reset`); an invalid value raises
``pydantic.ValidationError`` at start-up rather than on first use.
"""

from pathlib import Path
from typing import Literal

import phonenumbers
import yaml
from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.contracts import business
from bot.contracts.database import default_url
from bot.core.caches import process_cache

ROOT = Path(__file__).resolve().parents[2]


def _phone_region(company_file: Path) -> str:
    """The region (ISO 3166-1 alpha-2) of the ``phone`` in ``company_file``; "ZZ" (unknown) when it has none."""
    try:
        phone = (yaml.safe_load(company_file.read_text(encoding="utf-8")) or {}).get("phone") or ""
        return phonenumbers.region_code_for_number(phonenumbers.parse(str(phone))) or "ZZ"
    except (OSError, phonenumbers.NumberParseException):
        return "ZZ"


class Settings(BaseSettings):
    """Process settings. Durations are in seconds."""

    model_config = SettingsConfigDict(env_prefix="CLOSER_", env_file=".env", extra="ignore")

    # "production" refuses to start without the secrets that development generates under var/
    # (the Rasa API token, the action server token, the console key, the PII keys).
    environment: Literal["development", "production"] = "development"
    # Secrets shared with the Rasa server (bot.core.keys); unset in development: generated once under var/.
    rasa_jwt_secret: str | None = None  # HS256 secret of Rasa's HTTP API (rasa run --jwt-secret)
    action_server_token: str | None = None  # endpoints.yml's action_endpoint.token, checked by the action server
    # PII encryption at rest (bot.privacy.encryption); unset in development: generated once under var/.
    pii_keys: str | None = None  # "kid:base64url-32-bytes,…": every key a stored value may be under
    pii_active_key: str | None = None  # the kid new values are written under (default: the only one)
    pii_index_key: str | None = None  # base64url 32 bytes: HMAC key of the blind indexes
    # The business's folder (bot.contracts.business): "" is the default business at the project root. The paths
    # below marked "business" default to that business's own (its knowledge/, its var/ folder).
    business: str = ""
    database_url: str = default_url({})  # business; bot.contracts.database
    knowledge_dir: Path = ROOT / "knowledge"  # business
    rasa_url: str = "http://localhost:5005"
    rasa_timeout: float = 30.0
    console_host: str = "0.0.0.0"
    console_port: int = 8000
    max_message_chars: int = 2000
    # Prometheus metrics of this process on GET /metrics at this port (bot.observability.metrics); unset: none.
    metrics_port: int | None = None
    # Log lines as text, or JSON objects with the conversation id for a log collector (bot.observability.logs).
    log_format: Literal["text", "json"] = "text"
    # Web chat (/api/chat) rate limit, per process (connectors/ratelimit.py: a token bucket, bursts of the full
    # count allowed). The Rasa server's channels read the same two CLOSER_RATE_LIMIT_* variables.
    rate_limit_messages: int = 20  # messages per rate_limit_window_s from one sender
    rate_limit_window_s: float = 60.0  # seconds
    rate_limit_ip_messages: int = (
        60  # messages per rate_limit_window_s from one client IP (several customers may share one)
    )
    # Cart limits, per conversation.
    cart_max_quantity: int = 100_000  # units of one product
    cart_max_lines: int = 50  # different products
    # The region a phone number typed without its country code is read in (ISO 3166-1 alpha-2); unset: the region
    # of company.yml's phone (+971 → AE, +7 → RU), business.
    default_phone_region: str = ""

    # Knowledge index (Chroma). Embedded PersistentClient under var/ unless chroma_host is set.
    chroma_path: Path = ROOT / "var" / "chroma"  # business
    chroma_host: str | None = None
    chroma_port: int = 8000
    chroma_ssl: bool = False
    # What the console's GET /ready also checks when set (bot.observability.readiness): the action servers (their
    # load balancer's URL) and Redis, the Rasa servers' lock store (redis://host:port).
    actions_url: str | None = None
    redis_url: str | None = None
    index_log_dir: Path = ROOT / "var" / "index-logs"  # business
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
    # Response rephraser (bot.answering.rephrasing): the LLM rewrites the action server's template texts for the
    # conversation and the customer's language, sent only when every figure, SKU, link and product name is kept.
    llm_rephrase: bool = False
    llm_rephrase_max_chars: int = 600  # longer texts (product lists, carts) are sent as they are
    # LLM budget (OWASP LLM10, unbounded consumption), checked before each call; 0 = unlimited. Over it,
    # knowledge answers are extractive (fallback_reason names the budget) and escalation summaries structured.
    llm_max_tokens_per_conversation: int = 30_000  # prompt + completion tokens of a conversation's knowledge answers
    llm_max_cost_usd_per_day: float = 10.0  # USD of all knowledge answers per UTC day (litellm's prices)

    # Quotes: PDF links point at the console, reachable by the customer at this address.
    public_url: str = "http://localhost:8000"

    # Managers' Telegram chat for escalations (unset: escalations are recorded, nobody is pinged).
    telegram_bot_token: str | None = None
    telegram_manager_chat_id: str | None = None
    telegram_api_base: str = "https://api.telegram.org"
    telegram_timeout: float = 10.0

    # CRM: "sql" (the business DB only, the default), "hubspot" or "amocrm" (also that CRM, through an outbox).
    crm_provider: str = "sql"
    hubspot_token: str | None = None
    hubspot_api_base: str = "https://api.hubapi.com"
    hubspot_timeout: float = 10.0
    hubspot_pipeline: str = "default"
    crm_retry_max_s: float = 3600.0
    # amoCRM (bot.crm.amocrm): the account's address, the integration's OAuth 2.0 client, the pipeline deals go to
    # and the status id of each of Closer's stages in it (won and lost are amoCRM's own 142 and 143 by default).
    # Authorise once with `python -m bot amocrm-authorize CODE`; the tokens are kept encrypted in the business DB.
    amocrm_base_url: str | None = None  # https://<subdomain>.amocrm.ru
    amocrm_client_id: str | None = None
    amocrm_client_secret: str | None = None
    amocrm_redirect_uri: str | None = None
    amocrm_pipeline_id: int | None = None
    amocrm_status_ids: dict[str, int] = {}  # Closer stage → status id: new, qualified, proposal, negotiation
    amocrm_timeout: float = 10.0
    amocrm_requests_per_second: float = 7.0  # amoCRM's documented limit per integration

    # Booking a call with a sales manager (bot.booking): the manager's calendar, "none" (booking unavailable),
    # "google" (Google Calendar API v3 as a service account) or "caldav" (any CalDAV server). Calls lie within
    # company.yml's business_hours; the customer is invited by e-mail through the smtp_* settings below.
    calendar_provider: Literal["none", "google", "caldav"] = "none"
    calendar_timeout: float = 10.0  # seconds per calendar request
    booking_call_s: int = 1800  # a call's length
    booking_step_s: int | None = None  # calls start every this many seconds from opening time (unset: booking_call_s)
    booking_notice_s: int = 7200  # the earliest call starts this long from now
    booking_horizon_s: int = 7 * 86400  # the latest call ends within this long from now
    booking_max_offered: int = 6  # slots offered at once
    booking_organizer_email: str | None = None  # the invitation's organizer (unset: company.yml's email)
    # Google: the service account's JSON key file; share the calendar with its client_email ("Make changes to events"),
    # or set google_calendar_subject to act as that Workspace user (domain-wide delegation).
    google_service_account_file: Path | None = None
    google_calendar_id: str = "primary"  # or the calendar's address
    google_calendar_subject: str | None = None
    google_calendar_api_base: str = "https://www.googleapis.com"
    google_token_uri: str | None = None  # unset: the key file's token_uri
    # CalDAV: the calendar collection's URL (https://dav.example.com/calendars/manager/sales/), HTTP Basic credentials.
    caldav_calendar_url: str | None = None
    caldav_username: str | None = None
    caldav_password: str | None = None
    # Prepayment links through YooKassa (bot.payments): the shop's id and secret key (API v3, HTTP Basic auth); unset,
    # no links are made and POST /webhooks/yookassa is not served. In YooKassa's dashboard point the HTTP notifications
    # (payment.succeeded, payment.canceled) at <public_url>/webhooks/yookassa.
    yookassa_shop_id: str | None = None
    yookassa_secret_key: str | None = None
    yookassa_base_url: str = "https://api.yookassa.ru"
    yookassa_timeout: float = 10.0  # seconds, each try of a request
    yookassa_check_ip: bool = True  # notifications only from YooKassa's published addresses (bot.payments.service)
    yookassa_return_url: str | None = None  # where the payment page sends the customer back; unset: the web chat page
    # Reverse proxies in front of the console (addresses or CIDR networks) whose X-Forwarded-For names the client of a
    # notification; empty: the connection's own address is the client's.
    yookassa_trusted_proxies: list[str] = []

    # Manager console. Rasa's tracker store, read-only (endpoints.yml's tracker_store, as a SQLAlchemy URL).
    tracker_database_url: str = f"sqlite+aiosqlite:///{ROOT / 'var' / 'tracker.db'}"  # business
    # Key of the session cookies (32 url-safe base64 bytes, a Fernet key); unset: a key generated once
    # and kept in var/console-secret.key. Set it in production (several console replicas share it).
    console_secret_key: str | None = None
    console_session_max_age: int = 8 * 3600  # seconds
    # Conversations whose last event is older than this many days are anonymised by the console once a day
    # (bot.privacy.erasure.apply_retention; deals and quotes stay); 0 keeps them forever. A year covers a sales cycle
    # and the follow-ups managers read transcripts for.
    retention_days: int = 365
    console_secure_cookies: bool = False  # True behind HTTPS (production)
    rasa_results_dir: Path = ROOT / "results"  # `rasa test` reports
    # business: domain.yml, data/ and tests/stories/ the console's NLU export and test stories use
    project_root: Path = ROOT

    # Scheduled jobs (bot.scheduling): APScheduler in the console process; of several console replicas the one
    # holding the lease runs them (renewed every scheduler_lease_s / 3 seconds, taken over after it lapses).
    scheduler_enabled: bool = True
    scheduler_lease_s: float = 30.0
    follow_ups_interval_s: float = 60.0  # how often due follow-ups and pending escalations are looked at
    # Follow-ups sent per second at most (bench/follow_ups.py: 1,000 due at once drain in ~200 s at 5/s while live
    # customers' turns stay within 1.2× of their latency).
    follow_ups_per_second: float = 5.0
    reindex_at: str = "03:00"  # nightly re-index of knowledge/ and the catalog, business time zone (HH:MM)
    # Manager reports (bot.review.digest): the daily digest at digest_at (business time zone), the weekly one on
    # digest_weekday, to the managers' Telegram chat and by e-mail to digest_email_to through SMTP.
    digest_at: str = "08:00"
    digest_weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    digest_email_to: list[str] = []
    smtp_host: str | None = None  # unset: no e-mail is sent
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    smtp_from: str = "closer@localhost"
    smtp_timeout: float = 10.0
    # Conversation quality scoring (bot.review.scoring): a conversation idle this many seconds is finished.
    score_idle_s: float = 1800.0

    @model_validator(mode="after")
    def _the_business_paths(self) -> "Settings":
        """The paths marked "business" that were not set, for the business ``business`` names. Raises
        FileNotFoundError when it names no business folder."""
        environ = {"CLOSER_BUSINESS": self.business}
        folder, var = business.business_dir(environ), business.var_dir(environ)
        derived = {
            "database_url": default_url(environ),
            "knowledge_dir": folder / "knowledge",
            "chroma_path": var / "chroma",
            "index_log_dir": var / "index-logs",
            "tracker_database_url": f"sqlite+aiosqlite:///{var / 'tracker.db'}",
            "project_root": folder,
        }
        for name, value in derived.items():
            if name not in self.model_fields_set:
                setattr(self, name, value)
        if not self.default_phone_region:
            self.default_phone_region = _phone_region(self.knowledge_dir / "company.yml")
        return self

    @model_validator(mode="after")
    def _production_has_its_secrets(self) -> "Settings":
        if self.environment == "production":
            missing = [f"CLOSER_{name.upper()}" for name in PRODUCTION_SECRETS if not getattr(self, name)]
            if missing:
                raise ValueError(
                    f"CLOSER_ENVIRONMENT=production needs {', '.join(missing)} (development generates "
                    "them under var/; make a secret with: openssl rand -hex 32)"
                )
        return self


# Settings that production must be given (development generates each under var/ when unset).
PRODUCTION_SECRETS = ("rasa_jwt_secret", "action_server_token", "console_secret_key", "pii_keys", "pii_index_key")


@process_cache
def get_settings() -> Settings:
    """The process's settings, read once. Raises pydantic.ValidationError for an invalid value."""
    return Settings()
