"""The checkm object manifest: what Merritt's ingest manifest profile expects, and what it refuses."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dqueue.repository.checkm import (
    FIELDS_LINE,
    HEADER,
    Entry,
    HashAlgorithm,
    ManifestError,
    build,
    parse,
)

MD5 = "0b21c6d48e815dd537d42dc1cfac0111"
SHA256 = "8eb32b67483526906ff99036d9028aa5b6ab5e59e83ca439e63cc041284b6cc2"


def entry(**changes: object) -> Entry:
    base: dict[str, object] = {"url": "https://example.org/system/7/data.csv", "file_name": "data.csv",
                               "hash_algorithm": HashAlgorithm.MD5, "hash_value": MD5, "size": 1234,
                               "mime_type": "text/csv"}
    base.update(changes)
    return Entry(**base)  # type: ignore[arg-type]


def test_header_lines_are_merritts_own() -> None:
    text = build([entry()])
    lines = text.split("\n")
    assert lines[:5] == [
        "#%checkm_0.7",
        "#%profile | http://uc3.cdlib.org/registry/ingest/manifest/mrt-ingest-manifest",
        "#%prefix | mrt: | http://merritt.cdlib.org/terms#",
        "#%prefix | nfo: | http://www.semanticdesktop.org/ontologies/2007/03/22/nfo#",
        "#%fields | nfo:fileUrl | nfo:hashAlgorithm | nfo:hashValue | nfo:fileSize | nfo:fileLastModified | "
        "nfo:fileName | mrt:mimeType",
    ]
    assert lines[5] == f"https://example.org/system/7/data.csv | md5 | {MD5} | 1234 |  | data.csv | text/csv"
    assert text.endswith("\n#%eof\n") and not text.endswith("\n\n")


def test_round_trip_keeps_every_field() -> None:
    when = datetime(2026, 12, 2, 7, 0, 5, tzinfo=timezone(timedelta(hours=-8)))
    entries = [entry(),
               entry(url="http://127.0.0.1:8080/r/7/mrt-datacite.xml", file_name="mrt-datacite.xml",
                     hash_algorithm=HashAlgorithm.SHA256, hash_value=SHA256, size=0, last_modified=when,
                     mime_type=None),
               entry(url="https://example.org/x", file_name="folder1/x.txt", hash_algorithm=None, hash_value=None,
                     size=None, mime_type=None)]
    parsed = parse(build(entries))
    assert parsed[0] == entries[0] and parsed[2] == entries[2]
    assert parsed[1].last_modified == when and parsed[1].hash_algorithm is HashAlgorithm.SHA256
    assert parsed[1].size == 0 and parsed[1].mime_type is None
    assert "2026-12-02T15:00:05Z" in build(entries)  # written in UTC


def test_merritts_sample_manifest_parses() -> None:
    # mrt-doc's sampleFiles/4blocks.checkm: no size, no date, the mime column left out altogether.
    sample = "\n".join([*HEADER,
                        f"https://raw.githubusercontent.com/CDLUC3/mrt-doc/main/sampleFiles/4blocks.jpg | MD5 | "
                        f"{MD5} |  |  | 4blocks.jpg", "#%eof", ""])
    [only] = parse(sample)
    assert (only.file_name, only.hash_algorithm, only.size, only.mime_type) == ("4blocks.jpg", HashAlgorithm.MD5,
                                                                               None, None)
    assert parse(sample.replace("\n", "\r\n")) == [only]


@pytest.mark.parametrize("changes, message", [
    ({"file_name": "a|b.csv"}, "'|'"),
    ({"file_name": "a\nb.csv"}, "control"),
    ({"url": "https://example.org/a\tb"}, "control"),
    ({"mime_type": "text/csv|x"}, "'|'"),
    ({"file_name": "/etc/passwd"}, "relative"),
    ({"file_name": "../up.csv"}, "'..'"),
    ({"file_name": "a//b.csv"}, "empty"),
    ({"file_name": "a\\b.csv"}, "relative"),
    ({"file_name": ""}, "non-empty"),
    ({"url": "file:///data/a.csv"}, "http(s)"),
    ({"url": "ftp://example.org/a.csv"}, "http(s)"),
    ({"url": "https:///nohost"}, "http(s)"),
    ({"hash_value": MD5[:-1]}, "32 lowercase hex"),
    ({"hash_value": MD5.upper()}, "lowercase"),
    ({"hash_algorithm": None}, "go together"),
    ({"size": -1}, ">= 0"),
    ({"mime_type": "csv"}, "media type"),
])
def test_build_refuses_what_merritt_cannot_take(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ManifestError, match="entry 1") as caught:
        build([entry(file_name="ok.csv"), entry(**changes)])
    assert message in str(caught.value)


def test_build_refuses_a_repeated_name_and_naive_times() -> None:
    with pytest.raises(ManifestError, match="already used by entry 0"):
        build([entry(), entry(url="https://example.org/other")])
    with pytest.raises(ManifestError, match="time zone"):
        build([entry(last_modified=datetime(2026, 1, 1))])


def good() -> list[str]:
    return build([entry()]).split("\n")


@pytest.mark.parametrize("mangle, message", [
    (lambda lines: lines[1:], "line 1"),
    (lambda lines: [lines[0], "#%profile | http://uc3.cdlib.org/registry/ingest/manifest/mrt-batch-manifest",
                    *lines[2:]], "line 2"),
    (lambda lines: lines[:4] + [FIELDS_LINE.replace(" | mrt:mimeType", "")] + lines[5:], "line 5"),
    (lambda lines: [line for line in lines if line != "#%eof"], "#%eof"),
    (lambda lines: lines[:-1] + ["trailing text", ""], "after #%eof"),
    (lambda lines: lines[:5] + ["#%fields | nfo:fileUrl"] + lines[5:], "unexpected header"),
    (lambda lines: lines[:5] + [lines[5] + " | extra"] + lines[6:], "8 fields"),
    (lambda lines: lines[:5] + ["https://example.org/a | md5"] + lines[5:], "2 fields"),
    (lambda lines: lines[:5] + [lines[5].replace("| md5 |", "| crc32 |")] + lines[6:], "crc32"),
    (lambda lines: lines[:5] + [lines[5].replace("| 1234 |", "| 12x |")] + lines[6:], "12x"),
    (lambda lines: lines[:5] + [lines[5].replace("| 1234 |", "| 1_234 |")] + lines[6:], "1_234"),
    (lambda lines: lines[:6] + [lines[5]] + lines[6:], "already on line 6"),
])
def test_parse_is_strict(mangle, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ManifestError) as caught:
        parse("\n".join(mangle(good())))
    assert message in str(caught.value)


def test_parse_skips_blank_lines_and_comments() -> None:
    lines = good()
    assert parse("\n".join(lines[:5] + ["", "# a comment"] + lines[5:])) == [entry()]
