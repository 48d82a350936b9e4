"""The ``gateway`` command.

Exit status: 0 when everything was accepted (or was a duplicate), 1 when an input was rejected, 2 on a usage
or configuration error. ``ingest --json`` prints one JSON object per input file on stdout; logs go to stderr.
"""

from __future__ import annotations

import gc
import json
import secrets
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import click

from gateway import config as config_mod
from gateway import logs
from gateway.config import ROLES, FolderChannel
from gateway.errors import ConfigError

EXIT_REJECTED = 1
EXIT_USAGE = 2


class Context:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path

    def config(self) -> config_mod.GatewayConfig:
        try:
            return config_mod.load(self.config_path)
        except ConfigError as exc:
            _config_failure(exc)

    def gateway(self, **kwargs: Any) -> Any:
        from gateway.app import Gateway

        try:
            gateway = Gateway(self.config(), **kwargs)
        except ConfigError as exc:
            _config_failure(exc)
        # definitions, mappings, schemas and tables loaded by now live as long as the command: keep them out of
        # the collector's full passes, which otherwise walk them all again and again while messages are worked
        # (about a sixth of ingest time in bench/ingest_e2e.py)
        gc.collect()
        gc.freeze()
        return gateway


def _config_failure(exc: ConfigError) -> NoReturn:
    click.echo("configuration error:", err=True)
    for problem in exc.problems:
        click.echo(f"  {problem}", err=True)
    sys.exit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="GATEWAY_CONFIG",
    default="routes.yaml",
    show_default=True,
    help="the deployment file (env GATEWAY_CONFIG)",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    envvar="GATEWAY_LOG_LEVEL",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.option("--log-json/--log-console", default=None, help="log format (default: JSON unless stderr is a terminal)")
@click.pass_context
def main(ctx: click.Context, config_path: Path, log_level: str, log_json: bool | None) -> None:
    """EDI / message-integration gateway for Japanese port logistics."""
    logs.configure(log_level, log_json)
    ctx.obj = Context(config_path)


@main.command()
@click.option("--until-idle", is_flag=True, help="stop once every folder is empty and nothing is due")
@click.option("--no-http", is_flag=True, help="do not start the HTTP server")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(ROLES),
    help="run only this role (repeatable; default: every role in this one process)",
)
@click.pass_obj
def run(obj: Context, until_idle: bool, no_http: bool, roles: tuple[str, ...]) -> None:
    """Run the channels, the worker, the dispatcher and the HTTP server (or the roles named) until Ctrl-C."""
    gw = obj.gateway()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        gw.run(stop, until_idle=until_idle, http=False if no_http else None, roles=roles or ROLES)
    finally:
        gw.close()
    if until_idle:
        _print_summary(gw)


def _print_summary(gw: Any) -> None:
    from gateway.store import messages

    with gw.sessions() as s:
        counts = messages.counts_by_status(s)
    click.echo(f"messages by status: {json.dumps(counts, sort_keys=True)}")
    from sqlalchemy.engine import make_url

    click.echo(f"database: {make_url(gw.config.database_url).render_as_string(hide_password=True)}")
    for name, route in gw.config.routes.items():
        files = sorted(route.to.path.glob("*")) if route.to.path.is_dir() else []
        click.echo(f"route {name}: {len(files)} file(s) in {route.to.path}")
    for name, ch in gw.config.channels.items():
        if isinstance(ch, FolderChannel) and ch.enabled:
            click.echo(f"channel {name}: archive {ch.archive}, failed {ch.failed}")


def _inputs(paths: tuple[Path, ...]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        else:
            yield path


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="one JSON object per input file")
@click.option("--channel", default="cli", show_default=True, help="channel name recorded on the messages")
@click.option("--partner", default=None, help="partner code (default: from the UNB sender)")
@click.option("--no-dispatch", is_flag=True, help="queue outbound deliveries but do not send them now")
@click.pass_obj
def ingest(
    obj: Context, paths: tuple[Path, ...], as_json: bool, channel: str, partner: str | None, no_dispatch: bool
) -> None:
    """Store and process files now, then send what they caused."""
    gw = obj.gateway()
    if partner is not None and partner not in gw.config.partners:
        raise click.BadParameter(f"no partner {partner!r} in {obj.config_path}", param_hint="--partner")

    def accepted() -> Iterator[Any]:
        for path in _inputs(paths):
            result = gw.accept(path.read_bytes(), channel=channel, partner=partner, filename=path.name)
            result.file = str(path)
            yield result

    _report_and_exit(gw, accepted(), as_json, no_dispatch)


def _report_and_exit(gw: Any, results: Iterator[Any], as_json: bool, no_dispatch: bool) -> NoReturn:
    """Print each result (None: already reported as an error), send what they caused, exit 0 or 1."""
    rejected = False
    try:
        for result in results:
            if result is None:
                rejected = True
                continue
            rejected |= result.status == "rejected"
            _echo_result(result, as_json)
        if not no_dispatch:
            gw.dispatcher.drain()
    finally:
        gw.close()
    sys.exit(EXIT_REJECTED if rejected else 0)


def _echo_result(result: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.as_json(), ensure_ascii=False))
        return
    ids = ",".join(map(str, result.message_ids))
    click.echo(f"{result.status:9} {result.file}  {result.message_type or '-'} x{result.messages}  message {ids}")
    for err in result.errors:
        click.echo(f"          {err['code']}: {err['text']}")


@main.command()
@click.pass_obj
def check(obj: Context) -> None:
    """Validate routes.yaml and every mapping file under mappings/."""
    from gateway.mapping.language import load_mapping

    cfg = obj.config()
    problems: list[str] = []
    mapping_dir = obj.config_path.resolve().parent / "mappings"
    files = sorted(mapping_dir.rglob("*.yaml")) if mapping_dir.is_dir() else []
    for path in files:
        try:
            load_mapping(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        _config_failure(ConfigError(problems))
    click.echo(
        f"{obj.config_path}: OK ({len(cfg.partners)} partners, {len(cfg.channels)} channels, "
        f"{len(cfg.mappings)} mapping rules, {len(cfg.routes)} routes); {len(files)} mapping files OK"
    )


@main.group()
def messages() -> None:
    """Inspect stored messages."""


@messages.command("list")
@click.option("--status", default=None, help="received, done, failed, duplicate, sent, ...")
@click.option("--limit", default=50, show_default=True)
@click.option("--before", type=int, default=None, help="page: ids below this one")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def messages_list(obj: Context, status: str | None, limit: int, before: int | None, as_json: bool) -> None:
    """Newest messages first."""
    from gateway.store import messages as store

    gw = obj.gateway(migrate=False)
    try:
        with gw.sessions() as s:
            rows = [store.summary(m) for m in store.list_messages(s, status=status, limit=limit, before_id=before)]
    finally:
        gw.close()
    for row in rows:
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            err = row["error"]["code"] if row["error"] else ""
            click.echo(
                f"{row['id']:>8} {row['direction']:3} {row['status']:9} {row['channel']:16} "
                f"{row['message_type'] or '-':12} {row['filename'] or '-':30} {err}"
            )


@messages.command("show")
@click.argument("message_id", type=int)
@click.option("--raw", is_flag=True, help="write the raw payload bytes to stdout instead")
@click.pass_obj
def messages_show(obj: Context, message_id: int, raw: bool) -> None:
    """One message: status, error with code and position, steps (or its raw bytes)."""
    from gateway.model import Message
    from gateway.store import messages as store

    gw = obj.gateway(migrate=False)
    try:
        with gw.sessions() as s:
            msg = s.get(Message, message_id)
            if msg is None:
                click.echo(f"no message {message_id}", err=True)
                sys.exit(EXIT_REJECTED)
            if raw:
                sys.stdout.buffer.write(msg.raw)
                return
            click.echo(json.dumps(store.summary(msg), ensure_ascii=False, indent=2))
    finally:
        gw.close()


@messages.command("reprocess")
@click.argument("message_ids", nargs=-1, required=True, type=int)
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-dispatch", is_flag=True, help="queue outbound deliveries but do not send them now")
@click.pass_obj
def messages_reprocess(obj: Context, message_ids: tuple[int, ...], as_json: bool, no_dispatch: bool) -> None:
    """Process failed messages again from their raw bytes (after fixing a mapping or routes.yaml)."""
    gw = obj.gateway()

    def reprocessed() -> Iterator[Any]:
        for message_id in message_ids:
            try:
                yield gw.reprocess(message_id)
            except (LookupError, ValueError) as exc:
                click.echo(str(exc), err=True)
                yield None

    _report_and_exit(gw, reprocessed(), as_json, no_dispatch)


@main.group()
def deliveries() -> None:
    """Inspect outbound deliveries and replay dead ones."""


@deliveries.command("list")
@click.option("--status", type=click.Choice(["held", "pending", "sending", "done", "dead"]), default=None)
@click.option("--route", default=None, help="only this route")
@click.option("--limit", default=50, show_default=True)
@click.option("--before", type=int, default=None, help="page: ids below this one")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def deliveries_list(
    obj: Context, status: str | None, route: str | None, limit: int, before: int | None, as_json: bool
) -> None:
    """Newest deliveries first."""
    from gateway.store import outbox

    gw = obj.gateway(migrate=False)
    try:
        with gw.sessions() as s:
            found = outbox.list_deliveries(s, status=status, route=route, limit=limit, before_id=before)
            rows = [outbox.summary(s, d) for d in found]
    finally:
        gw.close()
    for row in rows:
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            err = row["last_error"]["code"] if row["last_error"] else ""
            replay = f"replay of {row['replay_of']}" if row["replay_of"] else ""
            click.echo(
                f"{row['id']:>8} {row['status']:7} {row['route']:20} attempts {row['attempts']:<3} "
                f"message {row['message_id'] or '-':<8} {err} {replay}".rstrip()
            )


@deliveries.command("show")
@click.argument("delivery_id", type=int)
@click.pass_obj
def deliveries_show(obj: Context, delivery_id: int) -> None:
    """One delivery as JSON: status, every attempt (outcome, error, times), its rendered message, its replays."""
    from gateway.model import Delivery
    from gateway.store import outbox

    gw = obj.gateway(migrate=False)
    try:
        with gw.sessions() as s:
            delivery = s.get(Delivery, delivery_id)
            if delivery is None:
                click.echo(f"no delivery {delivery_id}", err=True)
                sys.exit(EXIT_REJECTED)
            click.echo(json.dumps(outbox.summary(s, delivery, attempts=True), ensure_ascii=False, indent=2))
    finally:
        gw.close()


@deliveries.command("replay")
@click.argument("delivery_ids", nargs=-1, required=True, type=int)
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-dispatch", is_flag=True, help="queue the replays but do not send them now")
@click.pass_obj
def deliveries_replay(obj: Context, delivery_ids: tuple[int, ...], as_json: bool, no_dispatch: bool) -> None:
    """Queue dead deliveries again (same rendered bytes, new idempotency key), then send what is due."""
    from gateway.store import outbox

    gw = obj.gateway()
    failed = False
    try:
        for delivery_id in delivery_ids:
            try:
                with gw.sessions.begin() as s:
                    replayed = outbox.replay(s, delivery_id)
                    new_id = replayed.id
            except (LookupError, ValueError) as exc:
                click.echo(str(exc), err=True)
                failed = True
                continue
            if as_json:
                click.echo(json.dumps({"replayed": delivery_id, "delivery_id": new_id}))
            else:
                click.echo(f"delivery {delivery_id} replayed as delivery {new_id}")
        if not no_dispatch:
            gw.dispatcher.drain()
    finally:
        gw.close()
    sys.exit(EXIT_REJECTED if failed else 0)


@main.group()
def mappings() -> None:
    """Mapping files: run their examples, or apply one to an input."""


@mappings.command("test")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def mappings_test(obj: Context, files: tuple[Path, ...]) -> None:
    """Run every example of FILES (default: every mapping under mappings/); exit 1 when one fails."""
    from gateway.mapping.examples import run_examples

    paths = list(files) or sorted((obj.config_path.resolve().parent / "mappings").rglob("*.yaml"))
    failed = 0
    for path in paths:
        for result in run_examples(path):
            name = f"{path.name}" + (f" {result.input.name}" if result.input else "")
            click.echo(
                f"{'ok  ' if result.ok else 'FAIL'} {name}" + (f"\n     {result.detail}" if result.detail else "")
            )
            failed += not result.ok
    click.echo(f"{failed} failed" if failed else "all examples pass")
    sys.exit(EXIT_REJECTED if failed else 0)


@mappings.command("apply")
@click.argument("mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("input_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def mappings_apply(mapping: Path, input_file: Path) -> None:
    """Print the canonical JSON that MAPPING makes of INPUT_FILE (to write or check an example)."""
    from gateway.errors import GatewayError
    from gateway.mapping.examples import canonical
    from gateway.mapping.language import load_mapping

    try:
        doc = canonical(load_mapping(mapping), input_file.read_bytes())
    except ConfigError as exc:
        _config_failure(exc)
    except GatewayError as err:
        click.echo(json.dumps({"error": err.as_dict()}, ensure_ascii=False, indent=2))
        sys.exit(EXIT_REJECTED)
    click.echo(json.dumps(doc, ensure_ascii=False, indent=2))


@main.group("edifact")
def edifact_group() -> None:
    """The EDIFACT engine on its own: parse, validate, acknowledge."""


@edifact_group.command("parse")
@click.argument("file", type=click.File("rb"))
@click.option("--json", "as_json", is_flag=True, help="header fields and segments as JSON (the default output)")
def edifact_parse(file: Any, as_json: bool) -> None:
    """Print FILE's interchanges: header fields and every segment as [tag, element, ...] (streams any size)."""
    from gateway.edifact.report import parse_json
    from gateway.errors import GatewayError

    out = sys.stdout
    try:
        for piece in parse_json(file):
            out.write(piece)
    except GatewayError as err:
        out.write("\n")
        click.echo(json.dumps({"error": err.as_dict()}, ensure_ascii=False), err=True)
        sys.exit(EXIT_REJECTED)


@edifact_group.command("check-definitions")
def edifact_check_definitions() -> None:
    """Check that the message definitions in edifact/ are internally consistent; exit 2 when not."""
    from gateway.edifact import definitions

    defs = definitions.load()
    if defs.problems:
        _config_failure(ConfigError(defs.problems))
    click.echo(f"{len(defs.messages)} message definitions in {len(defs.segments)} directories: consistent")


@edifact_group.command("validate")
@click.argument("file", type=click.File("rb"))
@click.option("--contrl", is_flag=True, help="print the CONTRL acknowledgement instead of the errors")
@click.option("--reference", default=None, help="interchange reference of the CONTRL (default: time-based)")
@click.option("--version", "versions", multiple=True, help="agreed directory, e.g. D02A (repeatable); others: 17")
def edifact_validate(file: Any, contrl: bool, reference: str | None, versions: tuple[str, ...]) -> None:
    """Check envelopes and every message against edifact/ definitions; exit 1 when anything is wrong."""
    from datetime import datetime

    from gateway.edifact import contrl as contrl_mod
    from gateway.edifact.report import validation
    from gateway.errors import GatewayError

    try:
        reader, reports = validation(file, set(versions) or None)
    except GatewayError as err:  # the tokenizer could not go on: nothing to acknowledge message by message
        click.echo(json.dumps(err.as_dict(), ensure_ascii=False))
        sys.exit(EXIT_REJECTED)
    errors = [e.as_dict() for i in reader.interchanges for e in i.errors]
    for report in reports:
        errors += [e.as_dict() for e in report.envelope_errors]
        errors += [p.as_error(report.message.number).as_dict() for p in report.found]
    if contrl:
        now = datetime.now()
        for inter in reader.interchanges:
            mine = [r for r in reports if r.message.interchange is inter]
            ref = reference or now.strftime("%y%m%d%H%M%S")
            sys.stdout.write(contrl_mod.build(inter, mine, reference=ref, now=now).decode("latin-1"))
    else:
        for found in errors:
            click.echo(json.dumps(found, ensure_ascii=False))
        unvalidated = sorted({f"{r.message.type} {r.message.version}" for r in reports if r.problems is None})
        click.echo(f"{len(reports)} messages, {len(errors)} errors", err=True)
        if unvalidated:
            click.echo(f"no definition for: {', '.join(unvalidated)} (envelopes checked only)", err=True)
    sys.exit(EXIT_REJECTED if errors else 0)


@main.group()
def users() -> None:
    """Dashboard users (login, role, partner)."""


@users.command("add")
@click.argument("login")
@click.option("--role", type=click.Choice(["viewer", "operator", "admin"]), required=True)
@click.option("--partner", "partner_code", default=None, help="partner code: the user sees only its data")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
@click.pass_obj
def users_add(obj: Context, login: str, role: str, partner_code: str | None, password_stdin: bool) -> None:
    """Add a user; the password comes from a prompt (or stdin), never from the command line."""
    from gateway.store import audit
    from gateway.store import users as store

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    gw = obj.gateway()
    try:
        with gw.sessions.begin() as s:
            try:
                user = store.add(s, login, password, role, partner_code)
            except store.UserError as exc:
                click.echo(str(exc), err=True)
                sys.exit(EXIT_USAGE)
            detail = {"login": login, "role": role, "partner": partner_code}
            audit.record(s, "cli", "user.add", ("user", user.id), detail)
        click.echo(f"user {login} added ({role}{', partner ' + partner_code if partner_code else ''})")
    finally:
        gw.close()


@users.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def users_list(obj: Context, as_json: bool) -> None:
    """Every user: login, role, partner, active, created."""
    from gateway.store import users as store

    gw = obj.gateway()
    try:
        with gw.sessions() as s:
            rows = [
                {
                    "login": u.login,
                    "role": u.role,
                    "partner": u.partner.code if u.partner else None,
                    "active": u.active,
                    "created_at": u.created_at.isoformat(),
                }
                for u in store.all_users(s)
            ]
    finally:
        gw.close()
    for row in rows:
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            state = "active" if row["active"] else "disabled"
            partner = row["partner"] or "-"
            click.echo(f"{row['login']:<24} {row['role']:<9} {partner:<12} {state:<9} {row['created_at']}")


@users.command("disable")
@click.argument("login")
@click.pass_obj
def users_disable(obj: Context, login: str) -> None:
    """Disable a user: it can no longer log in, and its open sessions stop working."""
    from gateway.store import audit
    from gateway.store import users as store

    gw = obj.gateway()
    try:
        with gw.sessions.begin() as s:
            try:
                user = store.disable(s, login)
            except store.UserError as exc:
                click.echo(str(exc), err=True)
                sys.exit(EXIT_REJECTED)
            audit.record(s, "cli", "user.disable", ("user", user.id), {"login": login})
        click.echo(f"user {login} disabled")
    finally:
        gw.close()


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@click.pass_obj
def db_upgrade(obj: Context, revision: str) -> None:
    """Apply migrations up to REVISION (default: all)."""
    from gateway.store import db

    engine = db.make_engine(obj.config().database_url)
    try:
        db.upgrade(engine, revision)
        click.echo(f"database at revision {db.current_revision(engine)}")
    finally:
        engine.dispose()


@main.command("hash-key")
@click.option("--new", "generate", is_flag=True, help="generate a new random key")
def hash_key(generate: bool) -> None:
    """Print the sha256 to put in partners.<code>.api_key_sha256 (key read from stdin unless --new)."""
    import hashlib

    key = secrets.token_urlsafe(32) if generate else sys.stdin.readline().strip()
    if not key:
        raise click.UsageError("no key on stdin")
    if generate:
        click.echo(f"key:    {key}")
    click.echo(f"sha256: {hashlib.sha256(key.encode()).hexdigest()}")
