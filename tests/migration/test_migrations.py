"""Migrations: the numbered Alembic history builds exactly the schema the models declare, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from gateway.model import Base
from gateway.store import db
from tests.conftest import DATABASES


@pytest.mark.parametrize("scratch_database", DATABASES, indirect=True)
def test_migrated_schema_equals_the_models(scratch_database: str) -> None:
    engine = db.make_engine(scratch_database)
    try:
        db.upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == [], f"models and migrations differ; add a numbered migration: {diff}"
        assert db.current_revision(engine) == ScriptDirectory.from_config(db.alembic_config()).get_current_head()
    finally:
        engine.dispose()


def test_revisions_are_numbered_in_one_line() -> None:
    script = ScriptDirectory.from_config(db.alembic_config())
    revisions = list(reversed(list(script.walk_revisions())))
    assert [r.revision for r in revisions] == [f"{n:04d}" for n in range(1, len(revisions) + 1)]
