"""The Merritt client and the deposit package against the fake Merritt and a static server over the
staging folder: the form sent, what is staged, which failures are retried, which are never re-sent."""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from dqueue.repository import package
from dqueue.repository.checkm import HashAlgorithm, parse
from dqueue.repository.client import (
    DepositRequest,
    DepositUncertain,
    MerrittClient,
    MerrittRejected,
    MerrittTransient,
    version_numbers,
)
from dqueue.repository.settings import MerrittSettings
from dqueue.stash.resources import FileRow, Resource
from dqueue.testing.merritt import FakeMerritt, JobStatus
from dqueue.testing.static import StaticServer
from tests.helpers import wait_until
from tests.repository_support import PASSWORD, USER


@pytest.fixture
def fake() -> Iterator[FakeMerritt]:
    with FakeMerritt(USER, PASSWORD, fetch_timeout=5, visible_after=2.0) as f:  # "not yet found" is no race
        yield f


def settings_for(fake: FakeMerritt, web: StaticServer, tmp_path: Path, **changes: object) -> MerrittSettings:
    values: dict[str, object] = dict(
        base_url=fake.url, collection="cdl_dryad", profile="cdl_dryad_content", user=USER, password=PASSWORD,
        submitter="dryad/Dryad", public_base_url=web.url_for(""), staging_dir=str(tmp_path / "staging"),
        connect_timeout=2, read_timeout=2, attempts=3, backoff=0.01)
    values.update(changes)
    return MerrittSettings(**values)  # type: ignore[arg-type]


def resource(tmp_path: Path, rid: int = 7, version: int = 1, deleted: tuple[str, ...] = ()) -> Resource:
    data = b"a,b\n1,2\n"
    src = tmp_path / f"data-{rid}.csv"
    src.write_bytes(data)
    files = [FileRow(1, "data.csv", len(data), "data", "created", None, None, str(src), None),
             FileRow(2, "code.zip", 3, "software", "created", None, None, "/nowhere/code.zip", None)]
    files += [FileRow(10 + i, name, 1, "data", "deleted", None, None, None, None) for i, name in enumerate(deleted)]
    return Resource(rid, 1, "10.5061/dryad.test123", version, "Birds of the marsh",
                    {"creators": [{"name": "Doe, Jane"}]}, tuple(files))


def test_the_package_stages_local_and_generated_files_and_lists_data_files_only(
        fake: FakeMerritt, web: StaticServer, tmp_path: Path) -> None:
    s = settings_for(fake, web, tmp_path)
    pkg = package.build(resource(tmp_path, deleted=("old.csv",)), s)
    entries = parse(pkg.manifest)
    assert [e.file_name for e in entries] == ["data.csv", "mrt-datacite.xml", "mrt-delete.txt"]
    data = entries[0]
    assert data.url == web.url_for("7/files/data.csv")
    assert data.hash_algorithm is HashAlgorithm.SHA256
    assert data.hash_value == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert (tmp_path / "staging" / "7" / "mrt-delete.txt").read_text() == "old.csv\n"
    assert pkg.manifest_name == "7-manifest.checkm"


def test_no_public_base_url_is_refused_with_the_reason(fake: FakeMerritt, web: StaticServer, tmp_path: Path) -> None:
    with pytest.raises(package.PackageRefused, match="merritt_public_base_url is not set"):
        package.build(resource(tmp_path), settings_for(fake, web, tmp_path, public_base_url=""))


def test_a_local_file_that_changed_size_is_refused(fake: FakeMerritt, web: StaticServer, tmp_path: Path) -> None:
    r = resource(tmp_path)
    r = dataclasses.replace(r, files=(dataclasses.replace(r.files[0], size=999),))
    with pytest.raises(package.PackageRefused, match="holds 8 bytes, the version says 999"):
        package.build(r, settings_for(fake, web, tmp_path))


def test_a_deposit_is_ingested_and_found(fake: FakeMerritt, web: StaticServer, tmp_path: Path) -> None:
    s = settings_for(fake, web, tmp_path)
    r = resource(tmp_path)
    pkg = package.build(r, s)
    with MerrittClient(s) as client:
        answer = client.deposit(DepositRequest(pkg.manifest, pkg.manifest_name, package.local_id(r)))
        assert "bat:batchState" in answer
        assert client.search("doi:10.5061/dryad.test123") == {}
        fake.wait_idle()
        assert fake.deposits[-1].status is JobStatus.COMPLETED, fake.deposits[-1].reason
        wait_until(lambda: version_numbers(client.search("doi:10.5061/dryad.test123")) == {1}, timeout=10)
    assert fake.deposits[-1].fields["localIdentifier"] == "doi:10.5061/dryad.test123"


def test_5xx_is_retried_then_the_deposit_goes_through(fake: FakeMerritt, web: StaticServer, tmp_path: Path) -> None:
    s = settings_for(fake, web, tmp_path)
    r = resource(tmp_path)
    pkg = package.build(r, s)
    fake.inject("503", method="POST", path="/object/update", times=2)
    with MerrittClient(s, sleep=lambda _s: None) as client:
        client.deposit(DepositRequest(pkg.manifest, pkg.manifest_name, package.local_id(r)))
    assert [status for method, path, status in fake.requests if method == "POST"] == [503, 503, 200]
    assert len(fake.deposits) == 1


def test_401_is_rejected_at_once_without_the_password(fake: FakeMerritt, web: StaticServer, tmp_path: Path) -> None:
    s = settings_for(fake, web, tmp_path, password="wrong-password-xyz")
    lines: list[str] = []
    with MerrittClient(s, log=lines.append) as client, pytest.raises(MerrittRejected) as caught:
        client.deposit(DepositRequest("x", "7-manifest.checkm", "doi:10.5061/dryad.test123"))
    assert caught.value.status == 401
    assert len([r for r in fake.requests if r[0] == "POST"]) == 1
    assert "wrong-password-xyz" not in str(caught.value) + "".join(lines)


def test_a_read_timeout_is_never_sent_again(fake: FakeMerritt, web: StaticServer, tmp_path: Path) -> None:
    s = settings_for(fake, web, tmp_path, read_timeout=0.5)
    fake.inject("slow", method="POST", path="/object/update", delay=2)
    r = resource(tmp_path)
    pkg = package.build(r, s)
    with MerrittClient(s, sleep=lambda _s: None) as client, pytest.raises(DepositUncertain):
        client.deposit(DepositRequest(pkg.manifest, pkg.manifest_name, package.local_id(r)))
    wait_until(lambda: len(fake.requests) >= 1, timeout=5)
    assert len([r for r in fake.requests if r[0] == "POST"]) == 1


def test_a_dropped_connection_is_never_sent_again(fake: FakeMerritt, web: StaticServer, tmp_path: Path) -> None:
    s = settings_for(fake, web, tmp_path)
    fake.inject("reset", method="POST", path="/object/update")
    with MerrittClient(s, sleep=lambda _s: None) as client, pytest.raises(DepositUncertain):
        client.deposit(DepositRequest("x", "7-manifest.checkm", "doi:10.5061/dryad.test123"))
    assert len([r for r in fake.requests if r[0] == "POST"]) == 1


def test_connection_refused_is_retried_then_transient(tmp_path: Path, web: StaticServer) -> None:
    with FakeMerritt(USER, PASSWORD) as gone:
        url = gone.url
    s = dataclasses.replace(MerrittSettings(), base_url=url, user=USER, password=PASSWORD, profile="p",
                            submitter="s", attempts=2, backoff=0.01)
    sleeps: list[float] = []
    with MerrittClient(s, sleep=sleeps.append) as client, pytest.raises(MerrittTransient):
        client.deposit(DepositRequest("x", "7-manifest.checkm", "doi:10.5061/dryad.test123"))
    assert len(sleeps) == 1
