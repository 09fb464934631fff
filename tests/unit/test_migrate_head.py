"""The cheap revision check agrees with Alembic's own reading of the migrations."""
from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from dqueue.store import migrate


def test_head_revision_is_alembics_head() -> None:
    assert migrate.head_revision() == ScriptDirectory.from_config(migrate._config()).get_current_head()


def test_two_heads_are_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, down in (("0001", None), ("0002", "0001"), ("0003", "0001")):
        (tmp_path / f"{name}_x.py").write_text(f'revision = "{name}"\ndown_revision = {down!r}\n')
    monkeypatch.setattr(migrate, "_VERSIONS", tmp_path)
    with pytest.raises(migrate.SchemaError, match=r"2 heads: \['0002', '0003'\]"):
        migrate.head_revision()
