"""ZenodoClient against the fake Zenodo: each fault recovers or fails as classified, uploads stream."""
from __future__ import annotations

import email.utils
import functools
import hashlib
import http.client
import http.server
import os
import re
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dqueue.masking import mask
from dqueue.testing.zenodo import FakeZenodo
from dqueue.zenodo.http import (
    ZenodoClient,
    ZenodoRateLimited,
    ZenodoRejected,
    ZenodoTransient,
)
from dqueue.zenodo.upload import ChecksumMismatch, SourceError, UploadBody, UploadError
from tests.helpers import wait_until

TOKEN = "zen-T0KEN-0123456789abcdef"
META: dict[str, Any] = {"title": "A dataset", "upload_type": "dataset", "description": "About it",
        "creators": [{"name": "Doe, Jane"}]}
MiB = 1 << 20


class Harness:
    """A client wired to the fake, recording log lines, sleeps and pace calls instead of waiting."""

    def __init__(self, fake: FakeZenodo, **options: Any) -> None:
        self.fake = fake
        self.lines: list[str] = []
        self.sleeps: list[float] = []
        self.paced_at: list[int] = []  # how many requests the fake had answered at each pace() call
        options.setdefault("timeout", (2.0, 5.0))
        self.client = ZenodoClient(fake.url, fake.token, pace=lambda: self.paced_at.append(len(fake.requests)),
                                   log=self.lines.append, sleep=self.sleeps.append, **options)

    def statuses(self, method: str, pattern: str = "") -> list[int]:
        return [s for m, p, s in self.fake.requests if m == method and re.search(pattern, p)]


@pytest.fixture
def fake() -> Iterator[FakeZenodo]:
    with FakeZenodo(token=TOKEN) as f:
        yield f


@pytest.fixture
def h(fake: FakeZenodo) -> Iterator[Harness]:
    harness = Harness(fake)
    yield harness
    harness.client.close()
    assert not [line for line in harness.lines if TOKEN in line]


@pytest.fixture
def draft(h: Harness) -> dict[str, Any]:
    return h.client.create_deposition(META)


def make_file(path: Path, size: int) -> Path:
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(block)
        f.write(block[: size % MiB])
    return path


def md5_of(path: Path) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            md5.update(chunk)
    return md5.hexdigest()


def test_deposition_lifecycle(h: Harness, tmp_path: Path) -> None:
    c = h.client
    dep = c.create_deposition()
    assert c.get_deposition(dep["id"])["state"] == "unsubmitted"
    assert c.update_metadata(dep["id"], META)["metadata"]["title"] == "A dataset"
    c.upload(dep["links"]["bucket"], "a.txt", str(make_file(tmp_path / "a.txt", 10)), size=10)
    assert [f["key"] for f in c.list_bucket(dep["links"]["bucket"])["contents"]] == ["a.txt"]
    assert c.publish(dep)["state"] == "done"
    assert c.edit(dep["id"])["state"] == "inprogress"
    assert c.discard(dep)["state"] == "done"
    new = c.newversion(dep)
    assert new["id"] != dep["id"] and (new["state"], new["conceptrecid"]) == ("unsubmitted", dep["conceptrecid"])
    assert c.newversion(c.get(dep["links"]["self"]))["id"] == new["id"]  # Zenodo keeps one draft
    c.delete_file(new["links"]["bucket"], "a.txt")
    c.delete_file(new["links"]["bucket"], "a.txt")  # 404: already gone, fine
    c.delete_deposition(new["id"])
    c.delete_deposition(new["id"])  # 404: already gone, fine
    assert h.statuses("DELETE") == [204, 404, 201, 404]


def test_log_lines_are_stamped_and_show_each_request_and_answer(h: Harness) -> None:
    h.client.create_deposition()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    url = re.escape(h.fake.url + "/api/deposit/depositions")
    assert re.fullmatch(rf"{stamp} → POST {url} \(2 bytes\)", h.lines[0]), h.lines[0]
    assert re.fullmatch(rf"{stamp} ← 201 POST {url} in \d+\.\d\d s: \{{.*\}}", h.lines[1]), h.lines[1]


def test_4xx_is_raised_at_once_with_zenodo_message_and_errors(h: Harness, draft: dict[str, Any]) -> None:
    with pytest.raises(ZenodoRejected) as err:
        h.client.update_metadata(draft["id"], {"title": "no more"})
    assert err.value.status == 400
    assert "PUT" in str(err.value) and draft["links"]["self"] in str(err.value)
    assert "Validation error" in str(err.value) and "metadata.creators" in str(err.value)
    assert err.value.body["errors"]
    with pytest.raises(ZenodoRejected, match="404"):
        h.client.get_deposition(1)
    assert h.sleeps == []


def test_429_waits_for_retry_after(h: Harness) -> None:
    h.fake.inject("429", method="POST", retry_after=30)
    h.client.create_deposition()
    assert h.sleeps == [30]
    assert any(line.endswith("429: waiting 30 s (Retry-After)") for line in h.lines)
    assert h.statuses("POST") == [429, 201]


def test_429_waits_for_an_http_date_or_the_reset_epoch(h: Harness) -> None:
    h.fake.inject("429", retry_after=email.utils.formatdate(time.time() + 120, usegmt=True))
    h.fake.inject("429", reset_at=time.time() + 40)
    h.client.create_deposition()
    assert 115 <= h.sleeps[0] <= 121 and 37 <= h.sleeps[1] <= 41, h.sleeps
    assert any("(X-RateLimit-Reset)" in line for line in h.lines)


def test_429_asking_for_more_than_max_wait_raises_with_the_wait(h: Harness) -> None:
    h.fake.inject("429", retry_after=3600)
    with pytest.raises(ZenodoRateLimited) as err:
        h.client.create_deposition()
    assert (err.value.wait, err.value.status) == (3600, 429)
    assert h.sleeps == []


def test_429_waits_add_up_against_max_wait_but_use_no_tries(fake: FakeZenodo) -> None:
    h = Harness(fake, max_wait=100, attempts=2)
    fake.inject("429", retry_after=40, times=None)
    with pytest.raises(ZenodoRateLimited):
        h.client.create_deposition()
    assert h.sleeps == [40, 40]  # a third wait would pass 100 s
    assert h.statuses("POST") == [429, 429, 429]


def test_5xx_is_retried_with_backoff(h: Harness) -> None:
    h.fake.inject("504", times=1)
    h.fake.inject("500", times=1)
    h.client.create_deposition()
    assert h.statuses("POST") == [504, 500, 201]
    assert 1 <= h.sleeps[0] <= 2 and 2 <= h.sleeps[1] <= 4  # backoff 2 s, doubled, jittered down to half
    assert any(re.search(r"504: retry 2/5 in \d+\.\d s$", line) for line in h.lines)


def test_5xx_gives_up_after_attempts(h: Harness) -> None:
    h.fake.inject("500", times=None)
    with pytest.raises(ZenodoTransient, match=r"500.*gave up after 5 attempts") as err:
        h.client.get(h.fake.url + "/api/deposit/depositions")
    assert err.value.status == 500
    assert len(h.statuses("GET")) == 5 and len(h.sleeps) == 4


def test_dropped_connection_and_timeout_are_retried(fake: FakeZenodo) -> None:
    h = Harness(fake, timeout=(2.0, 0.3))
    fake.inject("reset", method="GET")
    fake.inject("slow", method="GET", delay=1.0)
    assert h.client.get(fake.url + "/api/deposit/depositions") == []
    assert len(h.sleeps) == 2
    assert any("ConnectionError: retry 2/5" in line for line in h.lines)
    assert any("ReadTimeout: retry 3/5" in line for line in h.lines)


def test_connection_refused_gives_up_as_transient(tmp_path: Path) -> None:
    with FakeZenodo(token=TOKEN) as gone:
        url = gone.url
    lines: list[str] = []
    client = ZenodoClient(url, TOKEN, attempts=2, sleep=lambda s: None, log=lines.append)
    with pytest.raises(ZenodoTransient, match="ConnectionError") as err:
        client.get_deposition(5)
    assert TOKEN not in str(err.value) and not [line for line in lines if TOKEN in line]


def test_pace_is_called_before_every_request(h: Harness, draft: dict[str, Any], tmp_path: Path) -> None:
    h.fake.inject("504", method="GET", times=1)
    h.fake.inject("bad_checksum", times=1)
    h.client.get_deposition(draft["id"])
    h.client.upload(draft["links"]["bucket"], "a.bin", str(make_file(tmp_path / "a", 1000)), size=1000)
    # One pace() per request, each before its request (the fake had answered exactly the earlier ones).
    assert h.paced_at == list(range(len(h.fake.requests)))


def test_token_goes_in_a_header_only_to_the_zenodo_host(h: Harness) -> None:
    other = h.fake.url.replace("127.0.0.1", "localhost")  # same server, another host name
    with pytest.raises(ZenodoRejected, match="401"):
        h.client.get(other + "/api/deposit/depositions")
    headers = h.fake.request_headers[-1][2]
    assert "?" not in h.fake.requests[-1][1] and TOKEN not in str(headers)


def test_mask_hides_token_and_secret_query_values() -> None:
    text = (f"GET https://z/api?access_token={TOKEN}&x=1 Authorization: Bearer abc.def "
            f"https://s3/f?X-Amz-Credential=AK%2F1&X-Amz-Signature=deadbeef {TOKEN}")
    masked = mask(text, TOKEN)
    assert TOKEN not in masked and "abc.def" not in masked and "deadbeef" not in masked and "AK%2F1" not in masked
    assert "access_token=hidden&x=1" in masked and "Bearer hidden" in masked
    assert ZenodoClient("http://z", TOKEN).mask(f"t={TOKEN}") == "t=hidden"


def test_upload_streams_50_mb_with_flat_memory_and_no_chunking(h: Harness, draft: dict[str, Any], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    size = 50 * MiB + 12345
    path = make_file(tmp_path / "big.bin", size)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    sent: list[int] = []
    real_send = http.client.HTTPConnection.send

    def send(self: http.client.HTTPConnection, data: Any) -> None:
        sent.append(len(data))
        real_send(self, data)

    monkeypatch.setattr(http.client.HTTPConnection, "send", send)
    tracemalloc.start()
    try:
        answer = h.client.upload(draft["links"]["bucket"], "big file.bin", f"file://{path}", size=size,
                                 expected_digest=sha256, digest_type="SHA-256")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB for a {size / MiB:.0f} MiB file"
    assert answer["checksum"] == f"md5:{md5_of(path)}" and answer["size"] == size
    stored = h.fake.depositions[draft["id"]].files["big file.bin"]
    assert (stored.size, stored.md5) == (size, md5_of(path))
    headers = h.fake.request_headers[-1][2]
    assert headers["Content-Length"] == str(size) and "Transfer-Encoding" not in headers
    assert max(sent) == MiB and sum(s for s in sent if s == MiB) >= 50 * MiB  # 1 MiB sends, not 16 KiB ones


def test_upload_body_gives_requests_a_length_and_no_read() -> None:
    import io

    import requests

    prepared = requests.Request("PUT", "http://x/f", data=UploadBody(io.BytesIO(b"abc"), 3)).prepare()
    assert prepared.headers["Content-Length"] == "3" and "Transfer-Encoding" not in prepared.headers
    assert not hasattr(UploadBody, "read")  # urllib3 reads objects with read() in 16 KiB blocks


def test_checksum_mismatch_is_retried_then_raised_and_the_bad_file_removed(h: Harness, draft: dict[str, Any],
                                                                          tmp_path: Path) -> None:
    bucket, src = draft["links"]["bucket"], str(make_file(tmp_path / "a", 3 * MiB))
    h.fake.inject("bad_checksum", times=1)
    assert h.client.upload(bucket, "a.bin", src, size=3 * MiB)["checksum"] == f"md5:{md5_of(tmp_path / 'a')}"
    assert h.statuses("PUT") == [201, 201] and len(h.sleeps) == 1
    assert any("ChecksumMismatch" in line and "retry 2/5" in line for line in h.lines)

    h.fake.inject("bad_checksum", times=None)
    with pytest.raises(ChecksumMismatch, match="gave up after 5 attempts"):
        h.client.upload(bucket, "b.bin", src, size=3 * MiB)
    assert "b.bin" not in h.fake.depositions[draft["id"]].files  # removed, so it cannot be published


def test_upload_is_resent_after_a_dropped_connection_or_5xx(h: Harness, draft: dict[str, Any],
                                                           tmp_path: Path) -> None:
    src = make_file(tmp_path / "a", 4 * MiB)
    h.fake.inject("reset", method="PUT", after_bytes=MiB, times=1)
    h.fake.inject("504", method="PUT", times=1)
    h.client.upload(draft["links"]["bucket"], "a.bin", str(src), size=4 * MiB)
    assert h.statuses("PUT") == [0, 504, 201]
    assert h.fake.depositions[draft["id"]].files["a.bin"].md5 == md5_of(src)


@pytest.mark.parametrize("declared, message", [(2000, "shorter"), (500, "longer")])
def test_source_of_the_wrong_size_fails_at_once_and_stores_nothing(h: Harness, draft: dict[str, Any],
                                                                   tmp_path: Path, declared: int,
                                                                   message: str) -> None:
    src = str(make_file(tmp_path / "a", 1000))
    with pytest.raises(UploadError, match=message):
        h.client.upload(draft["links"]["bucket"], "a.bin", src, size=declared)
    wait_until(lambda: h.statuses("PUT") == [499], message="the aborted PUT")
    assert h.fake.depositions[draft["id"]].files == {} and h.sleeps == []


def test_wrong_source_digest_fails_at_once_and_stores_nothing(h: Harness, draft: dict[str, Any],
                                                              tmp_path: Path) -> None:
    src = str(make_file(tmp_path / "a", 1000))
    with pytest.raises(UploadError, match="digest"):
        h.client.upload(draft["links"]["bucket"], "a.bin", src, size=1000, expected_digest="0" * 40,
                        digest_type="sha-1")
    wait_until(lambda: h.statuses("PUT") == [499], message="the aborted PUT")
    assert h.fake.depositions[draft["id"]].files == {}
    with pytest.raises(UploadError, match="unsupported digest"):
        h.client.upload(draft["links"]["bucket"], "a.bin", src, size=1000, expected_digest="1", digest_type="crc-32")
    with pytest.raises(UploadError, match="empty"):
        h.client.upload(draft["links"]["bucket"], "a.bin", src, size=0)


class _Source(http.server.SimpleHTTPRequestHandler):
    fail_next: list[int] = []

    def do_GET(self) -> None:
        if self.fail_next:
            self.send_error(self.fail_next.pop(0))
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def source_server(tmp_path: Path) -> Iterator[str]:
    _Source.fail_next = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Source, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_source_is_streamed_and_its_signature_never_logged(h: Harness, draft: dict[str, Any], tmp_path: Path,
                                                                source_server: str) -> None:
    src = make_file(tmp_path / "data.bin", 3 * MiB + 7)
    url = f"{source_server}/data.bin?X-Amz-Signature=SIGSECRET&X-Amz-Credential=CREDSECRET"
    _Source.fail_next = [503]
    answer = h.client.upload(draft["links"]["bucket"], "data.bin", url, size=3 * MiB + 7)
    assert answer["checksum"] == f"md5:{md5_of(src)}"
    assert len(h.sleeps) == 1 and any("SourceError" in line for line in h.lines)
    assert not [line for line in h.lines if "SIGSECRET" in line or "CREDSECRET" in line]

    _Source.fail_next = [404]
    with pytest.raises(UploadError, match="404") as err:
        h.client.upload(draft["links"]["bucket"], "data.bin", url, size=3 * MiB + 7)
    assert not isinstance(err.value, SourceError) and "SIGSECRET" not in str(err.value)
