"""One settings object for the whole platform, read from ``COUTURIER_*`` environment variables.

Two profiles:

* ``local`` (default): every store lives under ``COUTURIER_HOME`` (default ``./.couturier``);
  nothing to set up.
* ``production``: the servers are named explicitly. A missing one stops the process at start-up
  with the variable's name and an example value, instead of failing later mid-request.

Example::

    >>> from couturier.settings import Settings
    >>> s = Settings(home="/tmp/c")
    >>> str(s.paths.marketplace)
    '/tmp/c/marketplace'
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import pydantic_settings
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from couturier.errors import SettingsError

__all__ = ["PRODUCTION_REQUIRED", "Paths", "Settings", "get_settings"]

Profile = Literal["local", "production"]

#: What the production profile cannot start without: field -> an example value for the message.
PRODUCTION_REQUIRED: dict[str, str] = {
    "redis_url": "redis://redis.internal:6379/0",
    "postgres_dsn": "postgresql://couturier:secret@postgres.internal:5432/couturier",
    "object_store_uri": "s3://couturier-artifacts/prod",
    "mlflow_tracking_uri": "http://mlflow.internal:5000",
}


@dataclass(frozen=True)
class Paths:
    """Where each local store lives. All under ``home``."""

    home: Path

    @property
    def marketplace(self) -> Path:
        return self.home / "marketplace"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def features(self) -> Path:
        return self.home / "features"

    @property
    def mlflow(self) -> Path:
        return self.home / "mlflow"

    @property
    def predictions(self) -> Path:
        return self.home / "predictions"

    @property
    def monitoring(self) -> Path:
        return self.home / "monitoring"

    @property
    def pipelines(self) -> Path:
        return self.home / "pipelines"


class Settings(BaseSettings):
    """The platform's configuration. Every field is ``COUTURIER_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="COUTURIER_", extra="ignore", frozen=True)

    profile: Profile = "local"
    home: Path = Path(".couturier")
    redis_url: str | None = None
    postgres_dsn: str | None = None
    object_store_uri: str | None = None
    mlflow_tracking_uri: str | None = None
    admin_token: str | None = None
    #: prediction logs: False survives kill -9 of the server, True also a power cut (slower)
    predictions_fsync: bool = False
    #: the online store: sqlite or redis; unset, the profile decides (local: sqlite,
    #: production: redis). ``redis`` in the local profile reads ``COUTURIER_REDIS_URL``.
    online_store: Literal["sqlite", "redis"] | None = None
    #: the online store (Redis): socket timeout of a read or write on an open connection, and
    #: of opening one; a read against a hung store costs at most connect + read timeout
    online_timeout_ms: float = Field(default=100.0, gt=0)
    online_connect_timeout_ms: float = Field(default=100.0, gt=0)
    #: the online store's circuit breaker: opens after this many consecutive failed reads;
    #: while open, reads fail at once, and one probe read goes through every reset interval
    online_breaker_failures: int = Field(default=5, ge=1)
    online_breaker_reset_s: float = Field(default=1.0, gt=0)
    #: how long a request waits for its online features before it is served their defaults
    online_budget_ms: float = Field(default=50.0, gt=0)
    #: models served by another Open Inference Protocol server (a tier of their own): registry
    #: name -> the server's base URL, as JSON, e.g.
    #: COUTURIER_REMOTE_MODELS='{"authentication-image": "http://image-tier:8080"}'
    remote_models: dict[str, str] = Field(default_factory=dict)
    #: one call's attempt to a remote model: at most this long (a timed-out one is not retried)
    remote_timeout_ms: float = Field(default=250.0, gt=0)
    #: a remote model's circuit breaker: opens after this many consecutive failed calls
    remote_breaker_failures: int = Field(default=5, ge=1)
    remote_breaker_reset_s: float = Field(default=1.0, gt=0)
    seed: int = 7
    #: the marketplace the server reads (the review console's listings and photos; where the
    #: verdicts it records go); unset: the demo's, ``<home>/marketplace/demo``
    marketplace_run: Path | None = None

    @model_validator(mode="after")
    def _production_needs_servers(self) -> Settings:
        if self.profile == "production":
            for field, example in PRODUCTION_REQUIRED.items():
                if not getattr(self, field):
                    variable = f"COUTURIER_{field.upper()}"
                    raise SettingsError(
                        f"{variable} is not set; the production profile needs it; "
                        f"set it, e.g. {variable}={example}",
                        variable=variable,
                    )
        return self

    @field_validator("remote_models")
    @classmethod
    def _remote_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for model, url in value.items():
            if not url.startswith(("http://", "https://")):
                variable = "COUTURIER_REMOTE_MODELS"
                raise SettingsError(
                    f"{variable}: the URL of {model!r} is {url!r}; it must start with http:// "
                    f'or https://, e.g. {variable}=\'{{"{model}": "http://image-tier:8080"}}\'',
                    variable=variable,
                )
        return value

    @property
    def paths(self) -> Paths:
        return Paths(self.home.expanduser().absolute())

    @property
    def active_marketplace(self) -> Path:
        """The marketplace folder the server reads (``marketplace_run`` or the demo's)."""
        if self.marketplace_run is not None:
            return self.marketplace_run.expanduser().absolute()
        return self.paths.marketplace / "demo"

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """Read the environment; turn every validation failure into one readable error."""
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            first = exc.errors()[0]
            cause = first.get("ctx", {}).get("error")
            if isinstance(cause, SettingsError):
                raise cause from None
            field = str(first["loc"][0]) if first["loc"] else "?"
            variable = f"COUTURIER_{field.upper()}"
            raise SettingsError(
                f"{variable}={first.get('input')!r} is invalid: {first['msg']}",
                variable=variable,
            ) from None
        except pydantic_settings.SettingsError as exc:  # a mapping's variable is not JSON
            field = str(exc).split('field "', 1)[-1].split('"', 1)[0]
            variable = f"COUTURIER_{field.upper()}"
            raise SettingsError(
                f"{variable} is not valid JSON ({exc.__cause__}); give a JSON object, e.g. "
                f'{variable}=\'{{"authentication-image": "http://image-tier:8080"}}\'',
                variable=variable,
            ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings.load()
