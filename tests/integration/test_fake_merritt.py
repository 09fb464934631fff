"""The fake Merritt's contract, over real HTTP: what the deposit job and the completion check rely on
it to do like Merritt.  Files are pulled from a StaticServer over a temporary staging directory."""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dqueue.repository.checkm import Entry, HashAlgorithm, build
from dqueue.repository.datacite import delete_list, for_version
from dqueue.testing.merritt import FakeMerritt, JobStatus
from dqueue.testing.static import StaticServer
from tests.helpers import wait_until

USER, PASSWORD = "dryad-merritt", "s3cr3t-merritt-password"
DOI = "doi:10.5061/dryad.test123"
AUTH = (USER, PASSWORD)


@pytest.fixture
def staging(tmp_path: Path) -> Iterator[tuple[Path, StaticServer]]:
    with StaticServer(tmp_path) as web:
        yield tmp_path, web


@pytest.fixture
def fake() -> Iterator[FakeMerritt]:
    with FakeMerritt(USER, PASSWORD, fetch_timeout=5) as f:
        yield f


def stage(staging: tuple[Path, StaticServer], name: str, data: bytes) -> Entry:
    root, web = staging
    (root / name).write_bytes(data)
    return Entry(url=web.url_for(name), file_name=name, hash_algorithm=HashAlgorithm.MD5,
                 hash_value=hashlib.md5(data).hexdigest(), size=len(data))


def datacite(staging: tuple[Path, StaticServer], version: int) -> Entry:
    xml = for_version(DOI, "Birds of the marsh", {"creators": [{"name": "Doe, Jane"}]}, version)
    return stage(staging, "mrt-datacite.xml", xml.encode())


def deposit(fake: FakeMerritt, manifest: str, auth: Any = AUTH, endpoint: str = "update",
            **fields: str) -> requests.Response:
    form = {"profile": "cdl_dryad_content", "localIdentifier": DOI, "submitter": "dryad/Dryad",
            "responseForm": "json", "retainTargetURL": "true", **fields}
    form = {k: v for k, v in form.items() if v != ""}
    return requests.post(f"{fake.url}/object/{endpoint}", auth=auth, data=form, timeout=10,
                         files={"file": ("resource-7.checkm", manifest, "text/plain")})


def search(fake: FakeMerritt, terms: str = DOI, collection: str = "cdl_dryad") -> requests.Response:
    return requests.get(f"{fake.url}/api/{collection}/local_id_search", params={"terms": terms}, auth=AUTH,
                        timeout=10)


def found(fake: FakeMerritt, version: int) -> dict[str, Any] | None:
    r = search(fake)
    if r.status_code != 200:
        return None
    info: dict[str, Any] = r.json()
    return info if version in [v["version_number"] for v in info["versions"]] else None


def test_basic_auth_on_every_endpoint_and_the_password_never_echoed(fake: FakeMerritt) -> None:
    for auth in (None, (USER, "wrong"), ("someone", PASSWORD)):
        for r in (requests.get(f"{fake.url}/api/cdl_dryad/local_id_search", params={"terms": DOI}, auth=auth),
                  requests.get(f"{fake.url}/d/ark%3A%2F99999%2Ffk4x", auth=auth),
                  deposit(fake, "x", auth=auth)):
            assert r.status_code == 401
            assert r.headers["WWW-Authenticate"].startswith("Basic")
            assert PASSWORD not in r.text
    r = requests.get(f"{fake.url}/api/cdl_dryad/local_id_search", params={"terms": DOI},
                     headers={"Authorization": "Basic !!not-base64"})
    assert r.status_code == 401
    assert fake.deposits == []


def test_unknown_doi_is_201_with_an_empty_object_and_unknown_collection_404(fake: FakeMerritt) -> None:
    r = search(fake)
    assert (r.status_code, r.json()) == (201, {})
    assert search(fake, collection="cdl_other").status_code == 404


def test_deposit_is_queued_then_fetched_checked_and_appears(fake: FakeMerritt, staging: Any) -> None:
    entries = [stage(staging, "data.csv", b"a,b\n1,2\n"), stage(staging, "README.md", b"# hi\n"),
               datacite(staging, 1)]
    r = deposit(fake, build(entries))
    assert r.status_code == 200, r.text
    state = r.json()["bat:batchState"]
    assert state["bat:batchStatus"] == "QUEUED" and state["bat:batchID"].startswith("bid-")
    assert state["bat:updateFlag"] is True and state["bat:userAgent"] == "dryad/Dryad"
    assert state["bat:batchProfile"]["bat:profileID"] == "cdl_dryad_content"

    info = wait_until(lambda: found(fake, 1), message="version 1 in local_id_search")
    assert re.fullmatch(r"ark:/99999/fk4[0-9bcdfghjkmnpqrstvwxz]{8}", info["ark"])
    assert info["version_number"] == 1 and info["localids"] == [DOI]
    assert (info["erc_who"], info["erc_what"]) == ("Doe, Jane", "Birds of the marsh")
    [version] = info["versions"]
    files = {f["pathname"]: f for f in version["files"]}
    assert set(files) == {"producer/data.csv", "producer/README.md", "producer/mrt-datacite.xml"}
    assert version["file_count"] == 3
    assert files["producer/data.csv"]["full_size"] == 8
    assert files["producer/data.csv"]["digest_type"] == "sha-256"
    assert files["producer/data.csv"]["digest_value"] == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    _, web = staging
    assert {path for path, status in web.requests if status == 200} == {"/data.csv", "/README.md",
                                                                      "/mrt-datacite.xml"}
    assert fake.deposits[0].status is JobStatus.COMPLETED and fake.deposits[0].ark == info["ark"]
    listing = requests.get(f"{fake.url}/d/{requests.utils.quote(info['ark'], safe='')}", auth=AUTH)
    assert listing.status_code == 200 and "producer/data.csv" in listing.text


def test_update_with_the_ark_keeps_replaces_and_deletes_files(fake: FakeMerritt, staging: Any) -> None:
    assert deposit(fake, build([stage(staging, "a.csv", b"1"), stage(staging, "b.csv", b"2")])).ok
    ark = wait_until(lambda: found(fake, 1))["ark"]
    second = [stage(staging, "b.csv", b"22"), stage(staging, "c.csv", b"3"),
              stage(staging, "mrt-delete.txt", delete_list(["a.csv"]).encode())]
    assert deposit(fake, build(second), primaryIdentifier=ark).ok
    info = wait_until(lambda: found(fake, 2))
    assert info["ark"] == ark and info["version_number"] == 2
    assert [v["version_number"] for v in info["versions"]] == [2, 1]  # newest first, as Merritt lists them
    latest = {f["pathname"]: f["full_size"] for f in info["versions"][0]["files"]}
    assert latest == {"producer/b.csv": 2, "producer/c.csv": 1}
    first = {f["pathname"] for f in info["versions"][1]["files"]}
    assert first == {"producer/a.csv", "producer/b.csv"}


@pytest.mark.parametrize("spoil, reason", [
    (lambda e: Entry(e.url, e.file_name, e.hash_algorithm, "0" * 32, e.size), "md5 mismatch"),
    (lambda e: Entry(e.url, e.file_name, e.hash_algorithm, e.hash_value, (e.size or 0) + 1), "size mismatch"),
    (lambda e: Entry(e.url + ".gone", e.file_name, e.hash_algorithm, e.hash_value, e.size), "HTTP 404"),
    (lambda e: Entry("http://127.0.0.1:9/x", e.file_name, e.hash_algorithm, e.hash_value, e.size), "failed"),
])
def test_a_version_whose_files_do_not_match_never_appears(fake: FakeMerritt, staging: Any, spoil: Any,
                                                          reason: str) -> None:
    good = stage(staging, "good.csv", b"fine")
    bad = spoil(stage(staging, "bad.csv", b"some bytes"))
    r = deposit(fake, build([good, bad]))
    assert r.status_code == 200 and r.json()["bat:batchState"]["bat:batchStatus"] == "QUEUED"
    assert fake.wait_idle()
    [failed] = fake.failures
    assert failed.status is JobStatus.FAILED and reason in (failed.reason or "") and "bad.csv" in (failed.reason or "")
    assert search(fake).status_code == 201 and fake.versions(DOI) == []


def test_primary_identifier_must_match_the_ark_the_doi_is_bound_to(fake: FakeMerritt, staging: Any) -> None:
    assert deposit(fake, build([stage(staging, "a.csv", b"1")])).ok
    wait_until(lambda: found(fake, 1))
    r = deposit(fake, build([stage(staging, "b.csv", b"2")]), primaryIdentifier="ark:/99999/fk4other")
    assert r.status_code == 200  # Merritt finds the mismatch in the ingest job, not in the POST
    assert fake.wait_idle()
    assert "mapping is incorrect" in (fake.failures[0].reason or "")
    assert fake.versions(DOI) == [1]


def test_a_new_version_shows_only_after_visible_after(staging: Any) -> None:
    with FakeMerritt(USER, PASSWORD, visible_after=3.0) as fake:
        assert deposit(fake, build([stage(staging, "a.csv", b"1")])).ok
        assert fake.wait_idle() and fake.versions(DOI) == [1]
        assert search(fake).status_code == 201  # ingested, not yet searchable
        assert wait_until(lambda: found(fake, 1), timeout=15)["version_number"] == 1


def test_form_errors_answer_as_merritts_front_end(fake: FakeMerritt, staging: Any) -> None:
    manifest = build([stage(staging, "a.csv", b"1")])
    r = deposit(fake, manifest, profile="someone_elses_content")
    assert (r.status_code, r.text) == (404, "")
    r = requests.post(f"{fake.url}/object/update", auth=AUTH, timeout=10,
                      files={"profile": (None, "cdl_dryad_content"), "submitter": (None, "x")})
    assert (r.status_code, r.text) == (400, "Bad file parameter.\n")
    r = deposit(fake, manifest, submitter="")
    assert r.status_code == 400 and "submitter" in r.json()["exc:exc"]["exc:error"]
    assert requests.get(f"{fake.url}/object/update", auth=AUTH).status_code == 404
    assert fake.deposits == []


def test_a_bad_manifest_is_queued_and_then_fails(fake: FakeMerritt, staging: Any) -> None:
    text = build([stage(staging, "a.csv", b"1")]).replace("#%eof\n", "")
    r = deposit(fake, text)
    assert r.status_code == 200
    assert fake.wait_idle() and "#%eof" in (fake.failures[0].reason or "")


def test_xml_answer_without_response_form_json(fake: FakeMerritt, staging: Any) -> None:
    r = deposit(fake, build([stage(staging, "a.csv", b"1")]), responseForm="")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/xml")
    assert "<bat:batchStatus>QUEUED</bat:batchStatus>" in r.text
    assert fake.wait_idle() and fake.versions(DOI) == [1]


def test_add_endpoint_replaces_rather_than_updates(fake: FakeMerritt, staging: Any) -> None:
    assert deposit(fake, build([stage(staging, "a.csv", b"1")])).ok
    assert fake.wait_idle()
    assert deposit(fake, build([stage(staging, "b.csv", b"2")]), endpoint="ingest").ok
    info = wait_until(lambda: found(fake, 2))
    assert [f["pathname"] for f in info["versions"][0]["files"]] == ["producer/b.csv"]


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_injected_server_errors_are_count_limited(fake: FakeMerritt, staging: Any, kind: str) -> None:
    fake.inject(kind, method="POST", path=r"^/object/update$", times=2)
    manifest = build([stage(staging, "a.csv", b"1")])
    assert [deposit(fake, manifest).status_code for _ in range(3)] == [int(kind), int(kind), 200]
    assert search(fake).status_code in (200, 201)  # other endpoints untouched
    assert fake.wait_idle() and len(fake.deposits) == 1  # a refused POST queues nothing


def test_injected_401_reset_and_slow(fake: FakeMerritt) -> None:
    fake.inject("401", path="local_id_search", times=1)
    assert search(fake).status_code == 401
    assert search(fake).status_code == 201
    fake.inject("reset", path="local_id_search", times=1)
    with pytest.raises(requests.ConnectionError):
        search(fake)
    assert search(fake).status_code == 201
    fake.inject("slow", path="local_id_search", times=1, delay=2.0)
    with pytest.raises(requests.Timeout):
        requests.get(f"{fake.url}/api/cdl_dryad/local_id_search", params={"terms": DOI}, auth=AUTH, timeout=0.3)
    assert search(fake).status_code == 201
    assert ("GET", "/api/cdl_dryad/local_id_search", 0) in fake.requests
    with pytest.raises(ValueError, match="unknown fault"):
        fake.inject("418")


def test_a_reset_deposit_raises_and_queues_nothing(fake: FakeMerritt, staging: Any) -> None:
    fake.inject("reset", method="POST", path="^/object/", times=1)
    manifest = build([stage(staging, "a.csv", b"1")])
    with pytest.raises(requests.ConnectionError):
        deposit(fake, manifest)
    assert fake.deposits == [] and ("POST", "/object/update", 0) in fake.requests
    assert deposit(fake, manifest).status_code == 200
    assert fake.wait_idle() and fake.versions(DOI) == [1]
