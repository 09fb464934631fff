"""The resource manifest: valid input parses, every bad field is named (no database)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dqueue.stash import manifest

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


@pytest.mark.parametrize("name", ["a/b", "a\\b", "..", ".", "a..b", "../x", "a\x00b", "a\nb", "a\x1bb", "a\x7fb",
                                  "a\u2028b", "", "   "])
def test_a_file_name_is_a_plain_name(name: str) -> None:
    with pytest.raises(manifest.ManifestError) as caught:
        manifest.parse({**GOOD, "files": [{"name": name, "size": 1, "source": "/x"}]})
    assert str(caught.value).startswith("files[0].name:"), str(caught.value)


@pytest.mark.parametrize("name", ["a.csv", "data 2024.tar.gz", ".hidden", "naïve-ü.txt", "x" * 1000])
def test_ordinary_file_names_pass(name: str) -> None:
    assert manifest.parse({**GOOD, "files": [{"name": name, "size": 1, "source": "/x"}]}).files[0].name == name


@pytest.mark.parametrize("source, ok", [
    ("file:///data/a.csv", True), ("file://localhost/data/a.csv", True), ("file://evil.example/data/a.csv", False),
    ("file://10.0.0.1/share/a.csv", False), ("https://h:notaport/a", False), ("http://u:p@h.example/a", True),
    ("https:///no-host", False), ("/abs\n/path", False),
])
def test_file_urls_name_this_host_only(source: str, ok: bool) -> None:
    data = {**GOOD, "files": [{"name": "a", "size": 1, "source": source}]}
    if ok:
        assert manifest.parse(data).files[0].source == source
    else:
        with pytest.raises(manifest.ManifestError, match=r"^files\[0\]\.source:"):
            manifest.parse(data)


@pytest.mark.parametrize("change, field", [
    ({"title": "T" * (10 * 1024 * 1024)}, "title"),
    ({"title": "é" * 40_000}, "title"),  # 80,000 bytes: the limit is the column's, in bytes
    ({"description": "d" * (17 * 1024 * 1024)}, "description"),
    ({"identifier": "i" * 192}, "identifier"),
    ({"version": 2**31}, "version"),
    ({"title": "bad \ud800 surrogate"}, "title"),
    ({"keywords": ["ok", "\udfff"]}, "keywords[1]"),
    ({"creators": [{"name": "\ud800"}]}, "creators[0].name"),
    ({"files": [{"name": "a", "size": 2**63, "source": "/x"}]}, "files[0].size"),
    ({"files": [{"name": "a", "size": 1, "source": "/" + "x" * 4000}]}, "files[0].source"),
])
def test_an_over_long_field_is_named(change: dict[str, Any], field: str) -> None:
    with pytest.raises(manifest.ManifestError) as caught:
        manifest.parse({**GOOD, **change})
    assert str(caught.value).startswith(f"{field}:"), str(caught.value)[:300]
    assert len(str(caught.value)) < 300  # one line, not the value echoed back


def test_the_largest_field_is_named_when_the_fields_together_overflow_the_metadata_column() -> None:
    half = "n" * (5 * 1024 * 1024)
    with pytest.raises(manifest.ManifestError, match=r"^description: .* together"):
        manifest.parse({**GOOD, "description": half + "more", "notes": half})


def test_the_metadata_limit_counts_what_the_driver_escapes() -> None:
    quotes = '"' * (3 * 1024 * 1024)  # 6 MiB as JSON, 12 MiB as sent: past a 16 MiB packet with the rest
    with pytest.raises(manifest.ManifestError, match=r"^description: too long"):
        manifest.parse({**GOOD, "description": quotes})
    assert manifest.parse({**GOOD, "description": "n" * (7 * 1024 * 1024)}).metadata["description"]


def test_a_deeply_nested_manifest_file_names_the_field(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"identifier": "x", "files": [{"name": ' + "[" * 100_000 + "]" * 100_000 + "}]}")
    with pytest.raises(manifest.ManifestError, match=r"^files\[0\]\.name\[0\]…: nested deeper than 16 levels$"):
        manifest.load(str(deep))
    top = tmp_path / "top.json"
    top.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(manifest.ManifestError, match="nested deeper"):
        manifest.load(str(top))


def test_nesting_inside_strings_does_not_count() -> None:
    assert manifest.nested_too_deep(json.dumps({"title": "[" * 100, "k\"[": "{" * 50})) is None
    assert manifest.nested_too_deep(json.dumps({"a": [[[1]]]}), limit=3) == "a[0][0]"


def test_a_huge_number_is_invalid_json_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"version": ' + "9" * 5000 + "}")
    with pytest.raises(manifest.ManifestError, match="not valid JSON"):
        manifest.load(str(path))
