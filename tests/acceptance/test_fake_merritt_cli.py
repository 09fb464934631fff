"""The fake Merritt and the static file server run as programs (as the demo and the acceptance tests
start them): each prints its URL on the first line, a deposit goes from one to the other, and both
end cleanly on SIGTERM."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from dqueue.repository.checkm import Entry, HashAlgorithm, build
from tests.helpers import ROOT, wait_until

USER, PASSWORD = "cli-user", "cli-s3cr3t"


@contextmanager
def program(*args: str) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
        yield url
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_a_deposit_from_the_static_server_into_the_fake_merritt(tmp_path: Path) -> None:
    data = b"x,y\n1,2\n"
    (tmp_path / "data.csv").write_bytes(data)
    with program("dqueue.testing.static", "--dir", str(tmp_path), "--port", "0") as web, \
            program("dqueue.testing.merritt", "--port", "0", "--user", USER, "--password", PASSWORD,
                    "--visible-after", "0.2") as merritt:
        manifest = build([Entry(f"{web}/data.csv", "data.csv", HashAlgorithm.SHA256,
                                hashlib.sha256(data).hexdigest(), len(data))])
        r = requests.post(f"{merritt}/object/update", auth=(USER, PASSWORD), timeout=10,
                          data={"profile": "cdl_dryad_content", "localIdentifier": "doi:10.5061/dryad.cli",
                                "submitter": "dryad/Dryad", "responseForm": "json"},
                          files={"file": ("m.checkm", manifest)})
        assert r.status_code == 200 and r.json()["bat:batchState"]["bat:batchStatus"] == "QUEUED"

        def version() -> int | None:
            answer = requests.get(f"{merritt}/api/cdl_dryad/local_id_search", auth=(USER, PASSWORD), timeout=5,
                                  params={"terms": "doi:10.5061/dryad.cli"})
            return answer.json()["version_number"] if answer.status_code == 200 else None

        assert wait_until(version, timeout=15) == 1
        assert requests.get(f"{merritt}/api/cdl_dryad/local_id_search", timeout=5).status_code == 401
        assert requests.get(f"{web}/", timeout=5).status_code == 403  # no directory listings


def test_static_server_refuses_a_missing_directory(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "dqueue.testing.static", "--dir", str(tmp_path / "nope")],
                            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "not a directory" in result.stderr and "Traceback" not in result.stderr
