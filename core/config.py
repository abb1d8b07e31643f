"""Settings: the one place that reads the environment.

Defaults give the zero-setup embedded mode (SQLite file and a filesystem Celery broker under
``instance/``); ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL and Redis.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of CIDR networks, each checked (a typo must not open /metrics)."""
    out = []
    for part in (env.get(name) or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise SettingsError(f"{name} must list networks like 10.0.0.0/8, got {part!r}") from None
    return tuple(out)


# Keys that are public (README, demo) and so never acceptable as the real shared key.
KNOWN_REGISTRY_KEYS = frozenset({"dev-shared-key"})
TESTING_REGISTRY_KEY = "testing-only-registry-key"
MIN_METRICS_TOKEN = 16


def _normalise_db_url(url: str) -> str:
    # psycopg 3 is the driver we ship; accept the common spellings.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def instance_secret(instance_dir: Path, name: str, nbytes: int = 48) -> str:
    """A random secret generated once and kept in ``instance_dir/name`` (mode 600)."""
    path = instance_dir / name
    if path.exists():
        return path.read_text().strip()
    instance_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(nbytes)
    path.write_text(key)
    path.chmod(0o600)
    return key


def _secret(env: Mapping[str, str], instance_dir: Path) -> str:
    """SECRET_KEY from the environment, else one generated once and kept under instance/."""
    return env.get("SECRET_KEY") or instance_secret(instance_dir, "secret_key")


@dataclass(frozen=True)
class Settings:
    database_url: str
    instance_dir: Path
    secret_key: str
    redis_url: str | None = None
    city_registry_url: str = "http://127.0.0.1:5001"
    # Empty means "not configured": the web app, the worker and the registry refuse to start
    # (require_city_registry_key) unless testing; the demo runner generates its own.
    city_registry_key: str = ""
    city_registry_database_url: str = ""
    district_code: str = "321203"
    sync_batch_size: int = 200
    # Parallel lanes of one drain on PostgreSQL (SKIP LOCKED keeps them on disjoint rows): one batch's
    # HTTP round trip overlaps another's database work. Each lane holds one advisory lock per licence of
    # its batch: workers x lanes x batch size must stay under PostgreSQL's lock table
    # (max_locks_per_transaction x max_connections, 6,400 by default).
    sync_drain_lanes: int = 2
    # 电子监察: an open case is yellow when at most this many working days remain before its deadline.
    case_yellow_days: int = 1
    public_base_url: str = "http://127.0.0.1:5000"
    ratelimit_enabled: bool = True
    # Government staff sessions: signed out after 30 minutes without a request and 12 hours after
    # login whatever the activity (one working day); both end earlier at logout.
    session_idle_minutes: int = 30
    session_max_hours: int = 12
    # /metrics: a bearer token for the scraper and/or the networks it may scrape from; neither set
    # means nobody may read it. Figures are computed at most once per cache period.
    metrics_token: str = ""
    metrics_allowed_networks: tuple[str, ...] = ()
    metrics_cache_seconds: int = 10
    # Reverse proxies in front of the app whose X-Forwarded-* headers are trusted (0: none).
    trusted_proxies: int = 0
    search_miss_retention_days: int = 90
    # /verify's log rows wait in the serving process at most about this long before they are written
    # in one batch (licenses.verification_log: what a crash may lose).
    verification_log_seconds: int = 1
    testing: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def broker_url(self) -> str:
        return self.redis_url or "filesystem://"

    @property
    def broker_folder(self) -> Path:
        return self.instance_dir / "broker"

    @property
    def ratelimit_storage_uri(self) -> str:
        return self.redis_url or "memory://"

    def require_city_registry_key(self) -> str:
        """The shared key for the city registry; a missing or public key stops the start."""
        key = self.city_registry_key
        if not key and self.testing:
            return TESTING_REGISTRY_KEY
        if not key:
            raise SettingsError(
                "CITY_REGISTRY_KEY is not set: set it to the key agreed with the city registry "
                "(the demo runner `make run` generates one of its own)"
            )
        if key in KNOWN_REGISTRY_KEYS:
            raise SettingsError(f"CITY_REGISTRY_KEY must not be the published example key {key!r}")
        return key

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        instance_dir = Path(env.get("INSTANCE_DIR") or PROJECT_ROOT / "instance").resolve()
        db_url = _normalise_db_url(env.get("DATABASE_URL") or f"sqlite:///{instance_dir / 'gaogang.db'}")
        if not (db_url.startswith("sqlite") or db_url.startswith("postgresql")):
            raise SettingsError(f"DATABASE_URL must be a sqlite:// or postgresql:// URL, got {db_url!r}")
        redis_url = env.get("REDIS_URL") or None
        if redis_url and not redis_url.startswith(("redis://", "rediss://")):
            raise SettingsError(f"REDIS_URL must start with redis://, got {redis_url!r}")
        district = env.get("DISTRICT_CODE", "321203")
        if not (len(district) == 6 and district.isdigit()):
            raise SettingsError(f"DISTRICT_CODE must be a 6-digit GB/T 2260 code, got {district!r}")
        metrics_token = env.get("METRICS_TOKEN", "")
        if metrics_token and len(metrics_token) < MIN_METRICS_TOKEN:
            raise SettingsError(f"METRICS_TOKEN must be at least {MIN_METRICS_TOKEN} characters")
        registry_db = _normalise_db_url(
            env.get("CITY_REGISTRY_DATABASE_URL") or f"sqlite:///{instance_dir / 'city_registry.db'}"
        )
        return cls(
            database_url=db_url,
            instance_dir=instance_dir,
            secret_key=_secret(env, instance_dir),
            redis_url=redis_url,
            city_registry_url=env.get("CITY_REGISTRY_URL", "http://127.0.0.1:5001").rstrip("/"),
            city_registry_key=env.get("CITY_REGISTRY_KEY", ""),
            city_registry_database_url=registry_db,
            district_code=district,
            sync_batch_size=_int(env, "SYNC_BATCH_SIZE", 200, 1, 5000),
            sync_drain_lanes=_int(env, "SYNC_DRAIN_LANES", 2, 1, 16),
            case_yellow_days=_int(env, "CASE_YELLOW_DAYS", 1, 0, 30),
            public_base_url=env.get("PUBLIC_BASE_URL", f"http://127.0.0.1:{env.get('PORT', '5000')}"),
            ratelimit_enabled=env.get("RATELIMIT_ENABLED", "1") not in ("0", "false", "False"),
            session_idle_minutes=_int(env, "SESSION_IDLE_MINUTES", 30, 1, 24 * 60),
            session_max_hours=_int(env, "SESSION_MAX_HOURS", 12, 1, 24 * 7),
            metrics_token=metrics_token,
            metrics_allowed_networks=_networks(env, "METRICS_ALLOWED_NETWORKS"),
            metrics_cache_seconds=_int(env, "METRICS_CACHE_SECONDS", 10, 0, 3600),
            trusted_proxies=_int(env, "TRUSTED_PROXIES", 0, 0, 10),
            search_miss_retention_days=_int(env, "SEARCH_MISS_RETENTION_DAYS", 90, 1, 3650),
            verification_log_seconds=_int(env, "VERIFICATION_LOG_SECONDS", 1, 1, 3600),
        )
