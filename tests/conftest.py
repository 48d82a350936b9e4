"""Shared fixtures. Every test that takes ``database_url`` runs once on SQLite and once on PostgreSQL.

PostgreSQL comes from ``GATEWAY_TEST_POSTGRES_URL`` (``./dev test`` installs, starts and creates it). When it
cannot be reached the tests fail, they never skip; ``GATEWAY_TEST_DATABASES=sqlite`` is the explicit way to
run on SQLite alone on a laptop.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, create_engine, text

from gateway import config as config_mod
from gateway.app import Gateway
from gateway.model import Base
from gateway.store import db

pytest_plugins = ["tests.services.sshd", "tests.services.rabbitmq", "tests.services.browser"]

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("GATEWAY_TEST_CORPUS", REPO.parent / "shared" / "corpus"))  # ../shared/corpus
COPARN_EXAMPLE = REPO / "mappings" / "edifact" / "examples" / "coparn-d95b-two-messages.edi"
PG_URL = os.environ.get("GATEWAY_TEST_POSTGRES_URL", "postgresql://gateway:gateway@127.0.0.1:5432/gateway_test")
DATABASES = [d.strip() for d in os.environ.get("GATEWAY_TEST_DATABASES", "sqlite,postgresql").split(",") if d.strip()]


def _pg_engine() -> Engine:
    engine = db.make_engine(PG_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_URL} ({type(exc).__name__}). Run the suite with ./dev test, "
            "which installs and starts it, or set GATEWAY_TEST_DATABASES=sqlite to test SQLite alone.",
            pytrace=False,
        )
    return engine


@pytest.fixture(scope="session")
def pg_schema_ready() -> Iterator[str]:
    """The shared test database, emptied and migrated once per session."""
    engine = _pg_engine()
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    db.upgrade(engine)
    engine.dispose()
    yield PG_URL


@pytest.fixture(scope="session")
def ubl_xsdrt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The OASIS UBL runtime schemas of the corpus as the tree their relative imports expect (symlinks in tmp;
    the corpus stores them flattened and they never enter the repository)."""
    import csv

    manifest = CORPUS / "MANIFEST.tsv"
    if not manifest.is_file():
        pytest.fail(f"the corpus is missing: no {manifest} (set GATEWAY_TEST_CORPUS)", pytrace=False)
    root = tmp_path_factory.mktemp("ubl")
    with open(manifest, encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["repo"] == "kduvekot/ubl-release-package" and row["path_in_repo"].startswith("xsdrt/"):
                target = root / row["path_in_repo"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to((CORPUS / row["local_file"]).resolve())
    if not (root / "xsdrt" / "maindoc").is_dir():
        pytest.fail("the corpus holds no UBL xsdrt/maindoc schemas", pytrace=False)
    return root / "xsdrt"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a fresh SQLite file, or the PostgreSQL test database truncated."""
    if request.param == "sqlite":
        target = tmp_path / "gateway.db"
        target.write_bytes(request.getfixturevalue("sqlite_template").read_bytes())
        yield f"sqlite:///{target}"
    elif request.param == "postgresql":
        yield _truncated(request.getfixturevalue("pg_schema_ready"))
    else:
        raise ValueError(f"unknown test database {request.param!r}")


@pytest.fixture
def postgres_url(pg_schema_ready: str) -> str:
    """The PostgreSQL test database, empty, for tests about several processes sharing one (``postgresql``
    marker: left out, not skipped, when ``GATEWAY_TEST_DATABASES`` leaves PostgreSQL out)."""
    return _truncated(pg_schema_ready)


def _truncated(url: str) -> str:
    engine = db.make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)  # quoted: "user" is reserved
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``postgresql`` run only when PostgreSQL is one of the test databases."""
    if "postgresql" in DATABASES:
        return
    keep = [item for item in items if item.get_closest_marker("postgresql") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep


@pytest.fixture
def scratch_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, unmigrated database of the same kind as ``database_url``'s parameter (for migration tests)."""
    kind = request.param if hasattr(request, "param") else "sqlite"
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.db'}"
        return
    admin = _pg_engine()
    name = f"gw_scratch_{uuid.uuid4().hex[:10]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    admin.dispose()
    yield url
    admin = create_engine(db.normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def write_config(tmp_path: Path, database_url: str, **overrides: Any) -> Path:
    """A routes.yaml in ``tmp_path``: the repository's mappings, folders under ``tmp_path``."""
    doc: dict[str, Any] = {
        "database": {"url": database_url},
        "http": {"enabled": False, "host": "127.0.0.1", "port": 0},
        "partners": {
            "ONE": {"name": "Ocean Network Express", "business_type": "ocean_carrier", "edifact_ids": ["ONEY"]},
        },
        "channels": {
            "drops": {
                "type": "folder",
                "path": "inbox",
                "archive": "archive",
                "failed": "failed",
                "pattern": "*.edi",
                "poll": "100ms",
                "settle": 0,
            }
        },
        "mappings": [
            {"match": {"format": "edifact", "message": "COPARN"}, "use": str(REPO / "mappings/edifact/coparn.yaml")}
        ],
        "routes": {
            "conpas-prenotice": {
                "on": "container.announced",
                "render": "conpas",
                "to": {"type": "folder", "path": "outbox/conpas"},
                "retry": {"max_attempts": 3, "initial_delay": "1s", "multiplier": 2, "max_delay": "10s", "jitter": 0},
            }
        },
    }
    for key, value in overrides.items():
        doc[key] = value
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def config_path(tmp_path: Path, database_url: str) -> Path:
    return write_config(tmp_path, database_url)


@pytest.fixture
def gateway(config_path: Path) -> Iterator[Gateway]:
    gw = Gateway(config_mod.load(config_path))
    yield gw
    gw.close()


NACCS_PASSWORD_ENV = "TEST_NACCS_PASSWORD"


@pytest.fixture
def naccs_password(monkeypatch: pytest.MonkeyPatch) -> str:
    """The NACCS password in the environment (``password_env: TEST_NACCS_PASSWORD`` in the tests' routes),
    written into each message at send time and never stored."""
    monkeypatch.setenv(NACCS_PASSWORD_ENV, "pw-test")
    return "pw-test"


@pytest.fixture
def coparn() -> bytes:
    """The project's COPARN D.95B sample: 2 messages, 3 containers (CSQU3054383, MSCU1234566, TGHU8765436)."""
    return COPARN_EXAMPLE.read_bytes()
