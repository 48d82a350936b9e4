"""routes.yaml → typed, validated configuration.

Every section is a pydantic model that forbids unknown keys, so a typo is an error naming file, line, key and
the nearest valid key, never a silently ignored setting. Cross references (a channel's partner, a mapping's
file, a route's event and renderer) are checked after the shapes, with the same kind of message.
Relative paths are resolved against the directory that holds routes.yaml.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from gateway.errors import ConfigError
from gateway.events import EVENT_KINDS
from gateway.model import BusinessType
from gateway.yamlsource import YamlSource

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """``"500ms"``, ``"5s"``, ``"2m"``, ``"1h"`` or a bare number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    raise ValueError("expected a duration such as 500ms, 5s, 2m or 1h")


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
ENV_DATABASE_URL = "GATEWAY_DATABASE_URL"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(Section):
    # SQLite file (WAL) by default; GATEWAY_DATABASE_URL overrides, e.g. postgresql://user@host/db
    url: str = "sqlite:///var/gateway.db"
    # apply Alembic migrations on `gateway run` / `gateway ingest`; turn off where a release job does it
    auto_migrate: bool = True


class HttpConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class PartnerConfig(Section):
    name: str
    business_type: BusinessType
    # UNB sender identifications that belong to this partner (used when a channel does not name the partner)
    edifact_ids: list[str] = []
    # EDIFACT directories agreed with the partner (e.g. [D95B]); a message in another is refused with code 17.
    # Empty: any directory is accepted (validated where edifact/ has its definition).
    edifact_versions: list[str] = []
    # acknowledgements the partner agreement asks for; routes on edifact.received (render: contrl) and
    # edifact.application_error (render: aperak) decide where they go
    acks: list[Literal["contrl", "aperak"]] = []
    # sha256 hex digests of the partner's API keys: `gateway hash-key` prints one
    api_key_sha256: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = []


class FolderChannel(Section):
    """A local drop folder, the stand-in for scheduled carrier file drops."""

    type: Literal["folder"]
    path: Path
    archive: Path  # processed (or duplicate) files move here after their commit
    failed: Path  # rejected files move here; the message row says why
    pattern: str = "*"
    poll: Duration = 2.0
    # a file is taken only once its size and mtime have not changed for this long (writers still busy)
    settle: Duration = 1.0
    partner: str | None = None  # otherwise taken from the UNB sender via partners.*.edifact_ids
    # accept EDIFACT messages without UNB/UNZ (UNH..UNT only) on this channel; refused (EDI-13) otherwise
    allow_bare_edifact: bool = False
    enabled: bool = True


class MappingMatch(Section):
    format: Literal["edifact", "xml", "csv"]
    message: str | None = None  # e.g. COPARN; None matches any
    version: str | None = None  # e.g. D95B; None matches any
    partner: str | None = None  # None matches any partner
    channel: str | None = None  # the channel the payload came in on; None matches any


class MappingRule(Section):
    match: MappingMatch
    use: Path
    # CSV: a row that fails to map rejects the whole file (reject) or is skipped and noted (skip)
    bad_rows: Literal["reject", "skip"] = "reject"


class XmlSchemaConfig(Section):
    namespace: str  # the root element's namespace ("" for none)
    root: str  # the root element's local name
    xsd: Path  # the XSD file; its imports must be local files


class XmlConfig(Section):
    """Inbound XML limits and the schemas of document types beyond the gateway's own (xsd/catalog.yaml)."""

    schemas: list[XmlSchemaConfig] = []
    max_bytes: int = Field(default=50_000_000, ge=1)
    max_depth: int = Field(default=100, ge=1)


class RetryPolicy(Section):
    max_attempts: int = Field(default=8, ge=1)
    initial_delay: Duration = 2.0
    multiplier: float = Field(default=2.0, ge=1.0)
    max_delay: Duration = 600.0
    jitter: float = Field(default=0.1, ge=0.0, le=1.0)
    max_elapsed: Duration | None = None  # give up after this long since the first attempt


class FolderSink(Section):
    type: Literal["folder"]
    path: Path


class RouteWhen(Section):
    """A route's condition; every given key must match. Unset keys match anything."""

    partner: list[str] | None = None  # partner code of the message that caused the event
    message_type: list[str] | None = None
    full_empty: Literal["full", "empty"] | None = None
    direction: Literal["export", "import"] | None = None  # of the deal the event belongs to


class RouteConfig(Section):
    on: str  # an event kind, see gateway/events.py
    when: RouteWhen = RouteWhen()
    render: Literal["conpas", "contrl", "aperak"]
    to: FolderSink
    retry: RetryPolicy = RetryPolicy()
    enabled: bool = True


class GatewayConfig(Section):
    database: DatabaseConfig = DatabaseConfig()
    http: HttpConfig = HttpConfig()
    partners: dict[str, PartnerConfig] = {}
    channels: dict[str, FolderChannel] = {}
    mappings: list[MappingRule] = []
    routes: dict[str, RouteConfig] = {}
    xml: XmlConfig = XmlConfig()

    @property
    def database_url(self) -> str:
        return os.environ.get(ENV_DATABASE_URL) or self.database.url


def load(path: Path) -> GatewayConfig:
    """Read, validate and resolve routes.yaml; raise :class:`ConfigError` listing every problem."""
    path = path.resolve()
    source = YamlSource.read(path)
    config = source.validate(GatewayConfig)
    config = _resolve_paths(config, path.parent)
    problems = _check_references(config, source)
    if problems:
        raise ConfigError(problems)
    return config


def _resolve_paths(config: GatewayConfig, base: Path) -> GatewayConfig:
    def abs_(p: Path) -> Path:
        return p if p.is_absolute() else (base / p)

    db = config.database
    if db.url.startswith("sqlite:///") and not db.url.startswith("sqlite:////"):
        rel = db.url.removeprefix("sqlite:///")
        if rel and rel != ":memory:":
            db = db.model_copy(update={"url": f"sqlite:///{abs_(Path(rel))}"})
    channels = {
        name: ch.model_copy(update={"path": abs_(ch.path), "archive": abs_(ch.archive), "failed": abs_(ch.failed)})
        for name, ch in config.channels.items()
    }
    mappings = [rule.model_copy(update={"use": abs_(rule.use)}) for rule in config.mappings]
    routes = {
        name: r.model_copy(update={"to": r.to.model_copy(update={"path": abs_(r.to.path)})})
        for name, r in config.routes.items()
    }
    schemas = [x.model_copy(update={"xsd": abs_(x.xsd)}) for x in config.xml.schemas]
    xml = config.xml.model_copy(update={"schemas": schemas})
    return config.model_copy(
        update={"database": db, "channels": channels, "mappings": mappings, "routes": routes, "xml": xml}
    )


def _check_references(config: GatewayConfig, source: YamlSource) -> list[str]:
    from gateway.mapping.language import load_mapping  # mappings import config types

    problems: list[str] = []
    partners = set(config.partners)

    def unknown(loc: tuple[str | int, ...], kind: str, name: str, valid: set[str]) -> None:
        near = difflib.get_close_matches(name, sorted(valid), n=1, cutoff=0.5)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        problems.append(source.problem(loc, f"no {kind} named {name!r}{hint}"))

    for name, ch in config.channels.items():
        if ch.partner is not None and ch.partner not in partners:
            unknown(("channels", name, "partner"), "partner", ch.partner, partners)
    for i, rule in enumerate(config.mappings):
        if rule.match.partner is not None and rule.match.partner not in partners:
            unknown(("mappings", i, "match", "partner"), "partner", rule.match.partner, partners)
        if not rule.use.is_file():
            siblings = sorted(str(p) for p in rule.use.parent.glob("*.yaml")) if rule.use.parent.is_dir() else []
            near = difflib.get_close_matches(str(rule.use), siblings, n=1, cutoff=0.6)
            hint = f"; did you mean '{near[0]}'?" if near else ""
            problems.append(source.problem(("mappings", i, "use"), f"mapping file {rule.use} does not exist{hint}"))
            continue
        try:
            mapping = load_mapping(rule.use)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if mapping.format != rule.match.format:
            problems.append(
                source.problem(
                    ("mappings", i, "use"),
                    f"{rule.use.name} maps {mapping.format}, but the rule matches {rule.match.format}",
                )
            )
        if rule.match.channel is not None and rule.match.channel not in config.channels:
            unknown(("mappings", i, "match", "channel"), "channel", rule.match.channel, set(config.channels))
        if rule.bad_rows == "skip" and rule.match.format != "csv":
            problems.append(source.problem(("mappings", i, "bad_rows"), "bad_rows applies to CSV rules only"))
    for j, entry in enumerate(config.xml.schemas):
        if not entry.xsd.is_file():
            problems.append(source.problem(("xml", "schemas", j, "xsd"), f"schema file {entry.xsd} does not exist"))
    for name, route in config.routes.items():
        if route.on not in EVENT_KINDS:
            unknown(("routes", name, "on"), "event kind", route.on, set(EVENT_KINDS))
        for j, p in enumerate(route.when.partner or []):
            if p not in partners:
                unknown(("routes", name, "when", "partner", j), "partner", p, partners)
    return problems
