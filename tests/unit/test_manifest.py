"""The resource manifest: valid input parses, every bad field is named (no database)."""
from __future__ import annotations

from typing import Any

import pytest

from dqueue import manifest

GOOD: dict[str, Any] = {
    "identifier": "10.5061/dryad.x1", "title": "T", "creators": [{"name": "Doe, Jane", "orcid": "0000-0001"}],
    "files": [{"name": "a.csv", "size": 3, "kind": "data", "source": "https://example.org/a.csv",
               "digest": "0" * 64, "digest_type": "sha-256"},
              {"name": "old.csv", "size": 1, "state": "deleted"}],
}


def test_a_good_manifest_parses_with_defaults() -> None:
    m = manifest.parse(GOOD)
    assert m.identifier == "10.5061/dryad.x1" and m.version is None
    assert m.metadata["license"] == "cc-zero" and m.metadata["description"] == ""
    assert [f.state for f in m.files] == ["created", "deleted"]
    assert m.files[1].source is None and m.files[1].kind == "data"


@pytest.mark.parametrize("change, field", [
    ({"identifier": ""}, "identifier"),
    ({"title": 5}, "title"),
    ({"creators": []}, "creators"),
    ({"creators": [{"name": "X", "email": "x@y"}]}, "creators[0].email"),
    ({"version": 0}, "version"),
    ({"publication_date": "23/11/2026"}, "publication_date"),
    ({"related_identifiers": [{"relation": "cites"}]}, "related_identifiers[0].identifier"),
    ({"colour": "red"}, "colour"),
    ({"files": [{"name": "a", "size": -1, "source": "/x"}]}, "files[0].size"),
    ({"files": [{"name": "a/b", "size": 1, "source": "/x"}]}, "files[0].name"),
    ({"files": [{"name": "a", "size": 1, "kind": "code", "source": "/x"}]}, "files[0].kind"),
    ({"files": [{"name": "a", "size": 1, "state": "new", "source": "/x"}]}, "files[0].state"),
    ({"files": [{"name": "a", "size": 1}]}, "files[0].source"),
    ({"files": [{"name": "a", "size": 1, "source": "relative/path"}]}, "files[0].source"),
    ({"files": [{"name": "a", "size": 1, "source": "/x", "digest": "abc", "digest_type": "md5"}]}, "files[0].digest"),
    ({"files": [{"name": "a", "size": 1, "source": "/x", "digest": "0" * 32}]}, "files[0].digest"),
    ({"files": [{"name": "a", "size": 1, "source": "/x"}, {"name": "a", "size": 2, "source": "/y"}]}, "files[1].name"),
    ({"files": [{"name": f"f{i}", "size": 1, "source": "/x"} for i in range(101)]}, "files"),
])
def test_a_bad_field_is_named(change: dict[str, Any], field: str) -> None:
    with pytest.raises(manifest.ManifestError) as caught:
        manifest.parse({**GOOD, **change})
    assert str(caught.value).startswith(f"{field}:"), str(caught.value)


def test_not_an_object_and_not_json(tmp_path: Any) -> None:
    with pytest.raises(manifest.ManifestError, match="JSON object"):
        manifest.parse([1])
    bad = tmp_path / "m.json"
    bad.write_text("{nope")
    with pytest.raises(manifest.ManifestError, match="not valid JSON"):
        manifest.load(str(bad))
