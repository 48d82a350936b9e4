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

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

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
    # sha256 digests of the keys a Prometheus scraper sends (Bearer); with none, /metrics answers loopback only
    metrics_key_sha256: list[Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]] = []
    # how long a dashboard login lasts (from login; then the user logs in again)
    session_hours: float = Field(default=8, gt=0, le=720)


# what `gateway run --role` can run; one process runs them all by default
ROLES = ("receiver", "worker", "dispatcher", "web")


class QueuesConfig(Section):
    """RabbitMQ quorum queues between the roles of a scaled-out gateway (``gateway run --role ...``).

    Absent: the roles find their work by polling the database (the one-process default needs nothing more)."""

    url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"  # amqps:// verifies the server's certificate
    url_env: str | None = None  # take the URL (with its password) from this environment variable instead
    prefix: str = Field(default="gateway", pattern=r"^[A-Za-z0-9_.-]+$")  # queues <prefix>.received, .deliveries
    prefetch: int = Field(default=10, ge=1)  # notices a worker or dispatcher holds unacknowledged
    delivery_limit: int = Field(default=20, ge=1)  # redeliveries of a notice before RabbitMQ drops it
    heartbeat: int = Field(default=30, ge=0)
    # how often workers and dispatchers also look in the database, for work whose notice never came (a receiver
    # killed between its commit and its publish, a broker outage, a notice dropped at the delivery limit)
    sweep: Duration = 10.0
    max_backoff: Duration = 30.0

    @model_validator(mode="after")
    def _no_password_inline(self) -> QueuesConfig:
        if self.url_env is None and password_in_url(self.url):
            raise ValueError("keep the password out of routes.yaml: use url_env")
        return self


class DispatchConfig(Section):
    """The dispatcher role."""

    # how long a claimed delivery is held; a dispatcher that dies mid-send is taken over after it runs out
    lease: Duration = 300.0
    poll: Duration = 0.5  # how often the database is asked for due deliveries (retries, held ones released)
    # deliveries claimed per round; a dispatcher killed mid-round leaves its claims waiting out the lease
    batch: int = Field(default=20, ge=1)


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


def _rate_limit(value: str) -> str:
    from limits import parse

    try:
        parse(value)
    except ValueError:
        raise ValueError("expected a rate such as 20/second or 600 per minute") from None
    return value


class ChannelBase(Section):
    # accept EDIFACT messages without UNB/UNZ (UNH..UNT only) on this channel; refused (EDI-13) otherwise
    allow_bare_edifact: bool = False
    enabled: bool = True

    @property
    def owner(self) -> str | None:
        """The partner every payload of this channel belongs to, when the channel is dedicated to one."""
        partner = getattr(self, "partner", None)
        return partner if isinstance(partner, str) else None


class FolderChannel(ChannelBase):
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
    # a file is read into memory whole; a larger one is not read but moved to `failed` as oversize_<name>
    max_bytes: int = Field(default=100_000_000, ge=1)


class SftpChannel(ChannelBase):
    """Poll a partner's SFTP server (scheduled carrier drops); the remote file goes only after the commit."""

    type: Literal["sftp"]
    host: str
    port: int = Field(default=22, ge=1, le=65535)
    username: str
    password_env: str | None = None  # the environment variable holding the password (never the password)
    key_file: Path | None = None  # private key (OpenSSH format)
    key_passphrase_env: str | None = None
    # the server's key is pinned: an OpenSSH known_hosts file and/or SHA256 fingerprints ("SHA256:base64")
    known_hosts: Path | None = None
    host_key_sha256: list[str] = []
    path: str = "."  # remote folder
    pattern: str = "*"
    poll: Duration = 60.0
    settle: Duration = 5.0  # a file is taken once its size and mtime held still this long
    after: Literal["delete", "move"] = "delete"
    move_to: str | None = None  # remote folder for after: move
    concurrency: int = Field(default=2, ge=1, le=32)  # downloads at once
    timeout: Duration = 30.0
    max_backoff: Duration = 300.0  # reconnect delay doubles up to this
    partner: str | None = None


class SftpUser(Section):
    # OpenSSH public key lines ("ssh-ed25519 AAAA... comment") and/or an authorized_keys file
    authorized_keys: list[str] = []
    authorized_keys_file: Path | None = None


class SftpServerChannel(ChannelBase):
    """The gateway's own SFTP endpoint: partners push files into their own folder under ``root``."""

    type: Literal["sftp_server"]
    host: str = "127.0.0.1"
    port: int = Field(default=2222, ge=0, le=65535)
    host_key: Path  # the server's private key; generated (Ed25519) on first start when missing
    root: Path  # each partner sees root/<partner code>/ as "/"
    users: dict[str, SftpUser]  # partner code → its keys; the partner code is the login name
    max_file_bytes: int = Field(default=100_000_000, ge=1)


class AmqpChannel(ChannelBase):
    """Consume a RabbitMQ queue; each delivery is acknowledged only after its payload is committed."""

    type: Literal["amqp"]
    url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"  # amqps:// verifies the server's certificate
    url_env: str | None = None  # take the URL (with its password) from this environment variable instead
    queue: str
    declare: bool = True  # declare the quorum queue, its dead-letter exchange and dead-letter queue
    delivery_limit: int = Field(default=5, ge=1)  # quorum queue redeliveries before dead-lettering
    dead_letter_exchange: str | None = None  # default: "<queue>.dlx"
    dead_letter_queue: str | None = None  # default: "<queue>.dead"
    prefetch: int = Field(default=20, ge=1)
    heartbeat: int = Field(default=30, ge=0)
    partner_header: str = "partner"  # the message header naming the partner code
    partner: str | None = None  # every message on this queue is this partner's
    max_bytes: int = Field(default=50_000_000, ge=1)  # larger bodies are dead-lettered
    max_backoff: Duration = 60.0


class HttpChannel(ChannelBase):
    """``POST /api/v1/messages``: the partner comes from its API key."""

    type: Literal["http"]
    max_body: int = Field(default=10_000_000, ge=1)  # bytes; a larger body is refused with 413
    # requests per partner in a moving window, in the `limits` notation: "20/second", "600 per minute"
    rate_limit: Annotated[str, AfterValidator(_rate_limit)] = "20/second"


Channel = Annotated[
    FolderChannel | SftpChannel | SftpServerChannel | AmqpChannel | HttpChannel, Field(discriminator="type")
]


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
    """Write each payload into a local folder (temporary name, fsync, rename)."""

    type: Literal["folder"]
    path: Path


class HttpSink(Section):
    """POST (or ``method``) each payload to ``url`` with an ``Idempotency-Key`` header; TLS is always verified."""

    type: Literal["http"]
    url: Annotated[str, Field(pattern=r"^https?://")]
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    content_type: str = "application/json"
    connect_timeout: Duration = 10.0
    read_timeout: Duration = 30.0
    ca_file: Path | None = None  # PEM bundle of a private CA, used instead of the system's; never a way to turn it off
    headers: dict[str, str] = {}  # fixed headers (no secrets: they are in routes.yaml)
    headers_env: dict[str, str] = {}  # header name → environment variable holding its value (e.g. a token)


class SftpSink(Section):
    """Upload each payload to a remote folder: ``.<key>.tmp`` first, then renamed; the server's key is pinned."""

    type: Literal["sftp"]
    host: str
    port: int = Field(default=22, ge=1, le=65535)
    username: str
    password_env: str | None = None
    key_file: Path | None = None
    key_passphrase_env: str | None = None
    known_hosts: Path | None = None
    host_key_sha256: list[Annotated[str, Field(pattern=r"^SHA256:[A-Za-z0-9+/]{43}=?$")]] = []
    path: str = "."  # remote folder
    timeout: Duration = 30.0

    @model_validator(mode="after")
    def _pinned_and_login(self) -> SftpSink:
        if not self.known_hosts and not self.host_key_sha256:
            raise ValueError("the server's key must be pinned: give known_hosts or host_key_sha256")
        if self.password_env is None and self.key_file is None:
            raise ValueError("give password_env or key_file to log in")
        return self


class AmqpSink(Section):
    """Publish each payload to RabbitMQ: persistent, mandatory, with publisher confirms."""

    type: Literal["amqp"]
    url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"  # amqps:// verifies the server's certificate
    url_env: str | None = None  # take the URL (with its password) from this environment variable instead
    exchange: str = ""  # "" is the default exchange: routing_key is then the queue name
    routing_key: str
    content_type: str = "application/json"
    headers: dict[str, str] = {}  # AMQP message headers
    heartbeat: int = Field(default=30, ge=0)
    timeout: Duration = 30.0  # connect and socket timeout

    @model_validator(mode="after")
    def _no_password_inline(self) -> AmqpSink:
        if self.url_env is None and password_in_url(self.url):
            raise ValueError("keep the password out of routes.yaml: use url_env")
        return self


def password_in_url(url: str) -> bool:
    """An amqp:// or amqps:// URL that carries a password (RabbitMQ's local guest:guest default excepted)."""
    user_pass = url.split("://", 1)[-1].split("@", 1)[0] if "@" in url else ""
    return ":" in user_pass and user_pass != "guest:guest"


class SmtpSink(Section):
    """Mail each payload as the body of a text/plain message (the NACCS two-way mail transport)."""

    type: Literal["smtp"]
    host: str
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "starttls"  # ssl: SMTPS (implicit TLS, usually port 465)
    ca_file: Path | None = None  # PEM bundle of a private CA; certificates are always verified
    username: str | None = None
    password_env: str | None = None  # the environment variable holding the password
    mail_from: str
    mail_to: Annotated[list[str], Field(min_length=1)]
    subject: str = ""
    charset: str = "EUC-JP"
    timeout: Duration = 30.0

    @model_validator(mode="after")
    def _login_pair(self) -> SmtpSink:
        if (self.username is None) != (self.password_env is None):
            raise ValueError("give both username and password_env, or neither")
        return self


Sink = Annotated[FolderSink | HttpSink | SftpSink | AmqpSink | SmtpSink, Field(discriminator="type")]


class RouteWhen(Section):
    """A route's condition; every given key must match. Unset keys match anything."""

    partner: list[str] | None = None  # partner code of the message that caused the event
    message_type: list[str] | None = None
    full_empty: Literal["full", "empty"] | None = None
    direction: Literal["export", "import"] | None = None  # of the deal the event belongs to


class NaccsRoute(Section):
    """How a ``render: naccs`` route writes its NACCS EDI messages (see docs/configuration.md)."""

    business: Annotated[str, Field(pattern=r"^[A-Z0-9]{3,5}$")]  # the input common header's business code
    layout: str | None = None  # naccs/layouts/<layout>.yaml; default: the business code
    mapping: Path  # the outbound mapping, naccs/mappings/<business>.yaml
    user_code: Annotated[str, Field(max_length=5)]
    user_id: Annotated[str, Field(max_length=3)]
    password_env: str  # the environment variable holding the password; it is put in only when sending
    system_id: Annotated[str, Field(max_length=1)] = ""
    encoding: str = "euc_jp"

    @model_validator(mode="after")
    def _encoding(self) -> NaccsRoute:
        from gateway.errors import GatewayError
        from gateway.naccs.frame import check_encoding

        try:
            check_encoding(self.encoding)
        except GatewayError as exc:
            raise ValueError(exc.text) from None
        return self


class RouteConfig(Section):
    on: str  # an event kind, see gateway/events.py
    when: RouteWhen = RouteWhen()
    render: Literal["conpas", "contrl", "aperak", "naccs"]
    naccs: NaccsRoute | None = None  # with render: naccs
    # customs_permit: the delivery is held until the deal has its customs permit (export or import)
    require: Literal["customs_permit"] | None = None
    to: Sink
    retry: RetryPolicy = RetryPolicy()
    enabled: bool = True
    # send deliveries with the same container (or deal) in creation order: a later one waits for the earlier
    order_by: Literal["container", "deal"] | None = None


class GatewayConfig(Section):
    database: DatabaseConfig = DatabaseConfig()
    http: HttpConfig = HttpConfig()
    partners: dict[str, PartnerConfig] = {}
    channels: dict[str, Channel] = {}
    mappings: list[MappingRule] = []
    routes: dict[str, RouteConfig] = {}
    xml: XmlConfig = XmlConfig()
    queues: QueuesConfig | None = None
    dispatch: DispatchConfig = DispatchConfig()

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
    channels = {name: _resolve_channel(ch, abs_) for name, ch in config.channels.items()}
    mappings = [rule.model_copy(update={"use": abs_(rule.use)}) for rule in config.mappings]
    routes = {
        name: r.model_copy(
            update={
                "to": _resolve_channel(r.to, abs_),
                "naccs": r.naccs.model_copy(update={"mapping": abs_(r.naccs.mapping)}) if r.naccs else None,
            }
        )
        for name, r in config.routes.items()
    }
    schemas = [x.model_copy(update={"xsd": abs_(x.xsd)}) for x in config.xml.schemas]
    xml = config.xml.model_copy(update={"schemas": schemas})
    return config.model_copy(
        update={"database": db, "channels": channels, "mappings": mappings, "routes": routes, "xml": xml}
    )


def _resolve_channel(ch: Any, abs_: Any) -> Any:
    """Every path-valued key of a channel, made absolute."""
    update = {}
    for key, value in ch:
        if isinstance(value, Path):
            update[key] = abs_(value)
        elif isinstance(value, dict) and all(isinstance(v, SftpUser) for v in value.values()):
            update[key] = {
                k: u.model_copy(
                    update={"authorized_keys_file": abs_(u.authorized_keys_file) if u.authorized_keys_file else None}
                )
                for k, u in value.items()
            }
    return ch.model_copy(update=update)


def _check_channel(name: str, ch: Any, problems: list[str], source: YamlSource, partners: set[str]) -> None:
    loc = ("channels", name)
    if isinstance(ch, SftpChannel):
        if not ch.known_hosts and not ch.host_key_sha256:
            problems.append(
                source.problem(
                    (*loc, "host_key_sha256"), "the server's key must be pinned: give known_hosts or host_key_sha256"
                )
            )
        for i, fp in enumerate(ch.host_key_sha256):
            if not re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}=?", fp):
                problems.append(
                    source.problem(
                        (*loc, "host_key_sha256", i), "expected 'SHA256:' and 43 base64 characters (ssh-keygen -lf)"
                    )
                )
        if ch.known_hosts is not None and not ch.known_hosts.is_file():
            problems.append(source.problem((*loc, "known_hosts"), f"known_hosts file {ch.known_hosts} does not exist"))
        if ch.password_env is None and ch.key_file is None:
            problems.append(source.problem((*loc, "username"), "give password_env or key_file to log in"))
        if ch.after == "move" and not ch.move_to:
            problems.append(source.problem((*loc, "move_to"), "after: move needs move_to (a remote folder)"))
    elif isinstance(ch, SftpServerChannel):
        for user, cfg in ch.users.items():
            if user not in partners:
                near = difflib.get_close_matches(user, sorted(partners), n=1, cutoff=0.5)
                hint = f"; did you mean '{near[0]}'?" if near else ""
                problems.append(source.problem((*loc, "users", user), f"no partner named {user!r}{hint}"))
            if not cfg.authorized_keys and cfg.authorized_keys_file is None:
                problems.append(source.problem((*loc, "users", user), "give authorized_keys or authorized_keys_file"))
    elif isinstance(ch, AmqpChannel) and ch.url_env is None and password_in_url(ch.url):
        problems.append(source.problem((*loc, "url"), "keep the password out of routes.yaml: use url_env"))


def _check_references(config: GatewayConfig, source: YamlSource) -> list[str]:
    from gateway.mapping.language import load_mapping  # mappings import config types

    problems: list[str] = []
    partners = set(config.partners)

    def unknown(loc: tuple[str | int, ...], kind: str, name: str, valid: set[str]) -> None:
        near = difflib.get_close_matches(name, sorted(valid), n=1, cutoff=0.5)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        problems.append(source.problem(loc, f"no {kind} named {name!r}{hint}"))

    http_channels = [name for name, ch in config.channels.items() if isinstance(ch, HttpChannel)]
    for name in http_channels[1:]:
        problems.append(
            source.problem(("channels", name, "type"), f"only one http channel (already {http_channels[0]!r})")
        )
    for name, ch in config.channels.items():
        if ch.owner is not None and ch.owner not in partners:
            unknown(("channels", name, "partner"), "partner", ch.owner, partners)
        _check_channel(name, ch, problems, source, partners)
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
        _check_naccs_route(name, route, problems, source)
    return problems


def _check_naccs_route(name: str, route: RouteConfig, problems: list[str], source: YamlSource) -> None:
    from gateway.naccs.outbound import check_mapping_file

    loc = ("routes", name)
    if (route.render == "naccs") != (route.naccs is not None):
        problems.append(source.problem((*loc, "naccs"), "give a naccs section with render: naccs, and only then"))
        return
    if route.naccs is None:
        return
    if not route.naccs.mapping.is_file():
        problems.append(
            source.problem((*loc, "naccs", "mapping"), f"mapping file {route.naccs.mapping} does not exist")
        )
        return
    problems.extend(check_mapping_file(route.naccs.mapping))
