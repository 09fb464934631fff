"""The fake Zenodo's contract: what the client and the copier's tests rely on it to do like Zenodo."""
from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from dqueue.testing.zenodo import FakeZenodo
from tests.helpers import ROOT, wait_until

TOKEN = "s3cr3t-token-for-tests"
META: dict[str, Any] = {"title": "A dataset", "upload_type": "dataset", "description": "About it",
        "creators": [{"name": "Doe, Jane"}]}


@pytest.fixture
def fake() -> Iterator[FakeZenodo]:
    with FakeZenodo(token=TOKEN) as f:
        yield f


@pytest.fixture
def api() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {TOKEN}"
        yield s


def create(fake: FakeZenodo, api: requests.Session, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    r = api.post(f"{fake.url}/api/deposit/depositions", json={"metadata": metadata} if metadata else {})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def put_file(api: requests.Session, dep: dict[str, Any], name: str, data: bytes) -> requests.Response:
    return api.put(f"{dep['links']['bucket']}/{name}", data=data)


def published(fake: FakeZenodo, api: requests.Session, files: dict[str, bytes]) -> dict[str, Any]:
    dep = create(fake, api, META)
    for name, data in files.items():
        assert put_file(api, dep, name, data).status_code == 201
    r = api.post(dep["links"]["publish"])
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


def test_auth_by_header_or_query_and_401_never_echoes_the_token(fake: FakeZenodo) -> None:
    url = f"{fake.url}/api/deposit/depositions"
    assert requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert requests.get(url, params={"access_token": TOKEN}).status_code == 200
    for r in (requests.get(url), requests.get(url, params={"access_token": "wrong-" + TOKEN}),
              requests.get(url, headers={"Authorization": "Bearer wrong-" + TOKEN})):
        assert r.status_code == 401
        assert r.json()["status"] == 401 and r.json()["message"]
        assert TOKEN not in r.text and TOKEN not in str(r.headers)
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(r.headers)


def test_json_endpoints_need_application_json(fake: FakeZenodo, api: requests.Session) -> None:
    url = f"{fake.url}/api/deposit/depositions"
    assert api.post(url, data=b"{}", headers={"Content-Type": "text/plain"}).status_code == 415
    dep = create(fake, api)
    r = api.put(dep["links"]["self"], data=b'{"metadata": {}}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415


def test_create_gives_a_draft_with_prereserved_doi_and_absolute_links(fake: FakeZenodo,
                                                                      api: requests.Session) -> None:
    dep = create(fake, api)
    assert (dep["state"], dep["submitted"]) == ("unsubmitted", False)
    assert dep["metadata"]["prereserve_doi"]["doi"] == f"10.5072/zenodo.{dep['id']}"
    assert dep["conceptrecid"] and dep["files"] == [] and "doi" not in dep
    for name in ("self", "html", "bucket", "edit", "discard", "publish", "newversion", "files", "latest_draft"):
        assert dep["links"][name].startswith(fake.url + "/"), name
    assert api.get(dep["links"]["self"]).json()["id"] == dep["id"]
    assert [d["id"] for d in api.get(f"{fake.url}/api/deposit/depositions").json()] == [dep["id"]]
    assert fake.depositions[dep["id"]].state == "unsubmitted"


def test_metadata_update_validates_required_fields(fake: FakeZenodo, api: requests.Session) -> None:
    dep = create(fake, api)
    r = api.put(dep["links"]["self"], json={"metadata": {"title": "only a title"}})
    assert r.status_code == 400
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"metadata.upload_type", "metadata.creators", "metadata.description"}
    r = api.put(dep["links"]["self"], json={"metadata": META})
    assert r.status_code == 200
    assert r.json()["metadata"]["title"] == "A dataset"
    assert r.json()["metadata"]["prereserve_doi"] == dep["metadata"]["prereserve_doi"]


def test_publish_edit_discard_and_what_a_published_deposition_refuses(fake: FakeZenodo,
                                                                      api: requests.Session) -> None:
    dep = create(fake, api, META)
    r = api.post(dep["links"]["publish"])
    assert r.status_code == 400 and r.json()["message"].startswith("Validation error")
    assert put_file(api, dep, "a.csv", b"1,2\n").status_code == 201
    r = api.post(dep["links"]["publish"])
    assert r.status_code == 202
    done = r.json()
    assert (done["state"], done["submitted"], done["doi"]) == ("done", True, f"10.5072/zenodo.{dep['id']}")
    assert api.put(dep["links"]["self"], json={"metadata": META}).status_code == 400
    assert put_file(api, dep, "b.csv", b"3").status_code == 403
    assert api.delete(f"{dep['links']['bucket']}/a.csv").status_code == 403
    assert api.delete(dep["links"]["self"]).status_code == 403
    assert api.post(dep["links"]["discard"]).status_code == 400

    r = api.post(dep["links"]["edit"])
    assert r.status_code == 201 and (r.json()["state"], r.json()["submitted"]) == ("inprogress", True)
    assert api.post(dep["links"]["edit"]).status_code == 400
    assert api.put(dep["links"]["self"], json={"metadata": {**META, "title": "Changed"}}).status_code == 200
    r = api.post(dep["links"]["discard"])
    assert r.status_code == 201 and r.json()["state"] == "done" and r.json()["metadata"]["title"] == "A dataset"


def test_newversion_makes_one_draft_with_the_files_and_a_new_doi(fake: FakeZenodo, api: requests.Session) -> None:
    v1 = published(fake, api, {"a.csv": b"one"})
    r = api.post(v1["links"]["newversion"])
    assert r.status_code == 201
    assert r.json()["id"] == v1["id"]  # the body is the original deposition
    draft = api.get(r.json()["links"]["latest_draft"]).json()
    assert draft["id"] != v1["id"] and draft["conceptrecid"] == v1["conceptrecid"]
    assert (draft["state"], draft["submitted"]) == ("unsubmitted", False)
    assert draft["metadata"]["prereserve_doi"]["doi"] == f"10.5072/zenodo.{draft['id']}"
    assert draft["metadata"]["title"] == META["title"]
    assert [(f["filename"], f["filesize"]) for f in draft["files"]] == [("a.csv", 3)]
    again = api.post(v1["links"]["newversion"])
    assert again.status_code == 201 and again.json()["links"]["latest_draft"] == draft["links"]["self"]
    assert api.post(draft["links"]["newversion"]).status_code == 400  # a draft is not published

    assert put_file(api, draft, "a.csv", b"two").status_code == 201
    assert api.post(draft["links"]["publish"]).status_code == 202
    assert api.post(v1["links"]["newversion"]).status_code == 400  # no longer the latest version


def test_publishing_the_same_files_as_a_previous_version_is_refused(fake: FakeZenodo,
                                                                   api: requests.Session) -> None:
    v1 = published(fake, api, {"a.csv": b"one", "b.csv": b"bee"})
    draft = api.get(api.post(v1["links"]["newversion"]).json()["links"]["latest_draft"]).json()
    r = api.post(draft["links"]["publish"])
    assert r.status_code == 400
    assert "files must differ from all previous versions" in r.json()["message"]
    assert api.delete(f"{draft['links']['bucket']}/b.csv").status_code == 204
    assert api.post(draft["links"]["publish"]).status_code == 202


def test_delete_deposition(fake: FakeZenodo, api: requests.Session) -> None:
    dep = create(fake, api)
    r = api.delete(dep["links"]["self"])
    assert r.status_code == 201 and r.content == b""
    assert api.delete(dep["links"]["self"]).status_code == 404
    assert api.get(dep["links"]["self"]).status_code == 404
    assert dep["id"] not in fake.depositions


def test_bucket_upload_reports_md5_and_lists_and_deletes(fake: FakeZenodo, api: requests.Session) -> None:
    dep = create(fake, api)
    r = api.put(f"{dep['links']['bucket']}/a%20b%2Fc.txt", data=b"hello")
    assert r.status_code == 201
    assert r.json()["key"] == "a b/c.txt" and r.json()["size"] == 5
    assert r.json()["checksum"] == "md5:" + hashlib.md5(b"hello").hexdigest()
    assert r.json()["mimetype"] == "text/plain"
    listing = api.get(dep["links"]["bucket"]).json()
    assert [c["key"] for c in listing["contents"]] == ["a b/c.txt"]
    files = api.get(dep["links"]["self"]).json()["files"]
    assert [(f["filename"], f["filesize"], f["checksum"]) for f in files] == [("a b/c.txt", 5, r.json()["checksum"])]
    assert api.delete(f"{dep['links']['bucket']}/a%20b%2Fc.txt").status_code == 204
    assert api.delete(f"{dep['links']['bucket']}/a%20b%2Fc.txt").status_code == 404


def test_upload_limits_zero_length_and_100_files(fake: FakeZenodo, api: requests.Session) -> None:
    dep = create(fake, api)
    assert put_file(api, dep, "empty", b"").status_code == 400
    for i in range(100):
        assert put_file(api, dep, f"f{i}", b"x").status_code == 201
    r = put_file(api, dep, "f100", b"x")
    assert r.status_code == 400 and "100" in r.json()["message"]
    assert put_file(api, dep, "f7", b"replaced").status_code == 201  # same name: replaces, no new file
    assert fake.depositions[dep["id"]].files["f7"].size == 8


def test_chunked_upload_is_rejected(fake: FakeZenodo, api: requests.Session) -> None:
    dep = create(fake, api)
    r = api.put(f"{dep['links']['bucket']}/a.bin", data=iter([b"abc", b"def"]))
    assert r.status_code == 400
    assert r.json()["message"] == "File is smaller than expected."
    assert fake.request_headers[-1][2].get("Transfer-Encoding") == "chunked"
    assert fake.depositions[dep["id"]].files == {}
    assert api.get(dep["links"]["self"]).status_code == 200  # the connection is still usable


def test_a_body_cut_short_creates_no_file(fake: FakeZenodo, api: requests.Session) -> None:
    dep = create(fake, api)
    path = dep["links"]["bucket"].removeprefix(fake.url) + "/cut.bin"
    with socket.create_connection(("127.0.0.1", fake.port)) as s:
        s.sendall(f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                  "Content-Length: 100000\r\n\r\n".encode() + b"x" * 1000)
    wait_until(lambda: ("PUT", path, 499) in fake.requests, message="the cut upload")
    assert fake.depositions[dep["id"]].files == {}


def test_faults_match_by_method_and_path_and_count_down(fake: FakeZenodo, api: requests.Session) -> None:
    url = f"{fake.url}/api/deposit/depositions"
    fault = fake.inject("429", method="GET", path=r"/depositions$", times=2, retry_after=7, reset_at=2e9)
    assert api.post(url, json={}).status_code == 201  # another method: untouched
    r = api.get(url)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7" and r.headers["X-RateLimit-Reset"] == "2000000000"
    assert api.get(url).status_code == 429
    assert api.get(url).status_code == 200
    assert (fault.hits, fault.times) == (2, 0)

    fake.inject("500")
    fake.inject("504")
    r500, r504 = api.get(url), api.get(url)
    assert (r500.status_code, r500.content) == (500, b"")
    assert r504.status_code == 504 and "Gateway" in r504.text
    assert [s for _, _, s in fake.requests[-2:]] == [500, 504]


def test_reset_and_slow_faults(fake: FakeZenodo, api: requests.Session) -> None:
    url = f"{fake.url}/api/deposit/depositions"
    fake.inject("reset", method="GET")
    with pytest.raises(requests.ConnectionError):
        api.get(url)
    assert fake.requests[-1] == ("GET", "/api/deposit/depositions", 0)
    dep = create(fake, api)
    fake.inject("reset", method="PUT", path="/api/files/", after_bytes=1000)
    with pytest.raises(requests.ConnectionError):
        put_file(api, dep, "big.bin", b"z" * 4_000_000)
    assert fake.depositions[dep["id"]].files == {}
    fake.inject("slow", delay=0.3)
    start = time.monotonic()
    assert api.get(url).status_code == 200
    assert time.monotonic() - start >= 0.3


def test_bad_checksum_fault_only_spoils_an_upload(fake: FakeZenodo, api: requests.Session) -> None:
    fake.inject("bad_checksum")
    dep = create(fake, api)  # not an upload: the fault waits for one
    r = put_file(api, dep, "a.txt", b"data")
    assert r.status_code == 201
    assert r.json()["checksum"] != "md5:" + hashlib.md5(b"data").hexdigest()
    assert put_file(api, dep, "a.txt", b"data").json()["checksum"] == "md5:" + hashlib.md5(b"data").hexdigest()


def test_rate_limit_headers_and_enforced_limit(fake: FakeZenodo, api: requests.Session) -> None:
    url = f"{fake.url}/api/deposit/depositions"
    fake.set_rate_limit(3)
    answers = [api.get(url) for _ in range(4)]
    if answers[-1].status_code != 429:  # the clock minute turned during the loop
        answers = [api.get(url) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
    assert all(r.headers["X-RateLimit-Limit"] == "3" for r in answers)


def test_runs_as_a_subprocess_and_prints_its_url() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "dqueue.testing.zenodo", "--port", "0", "--token", TOKEN],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        r = requests.get(f"{url}/api/deposit/depositions", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert r.status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
