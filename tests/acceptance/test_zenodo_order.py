"""Strict version order across workers and hosts: two worker pools, as two hosts, on one dataset."""
from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine

from dqueue.testing.zenodo import FakeZenodo
from dqueue.zenodo import jobs as zjobs
from dqueue.zenodo import store as zenodo_copies
from tests.helpers import wait_until
from tests.workers import worker
from tests.zenodo_support import add_resource, copies, file_entry, manifest_for, zenv

STAMP = re.compile(r"^(\S+Z) (start \d+|finished)", re.M)


def test_two_hosts_run_the_versions_of_one_dataset_one_at_a_time_in_order(
        engine: Engine, db_url: str, fake: FakeZenodo, tmp_path: Path) -> None:
    files, ids = [], []
    for v in range(1, 6):
        files = [{**f, "state": "copied"} for f in files]
        files.append(file_entry(tmp_path / f"v{v}", f"part{v}.csv", f"{v}\n".encode() * 20000))
        ids.append(add_resource(engine, manifest_for("10.5061/dryad.order", files)))
    for rid in reversed(ids):
        zjobs.send(engine, rid)
    fake.inject("slow", method="PUT", path=r"/api/files/", times=None, delay=0.05)  # stretch each copy
    env = zenv(fake, tmp_path / "flags")
    with worker(db_url, tmp_path / "a.log", "-n", "2", DQUEUE_HOSTNAME="host-a", **env), \
            worker(db_url, tmp_path / "b.log", "-n", "2", DQUEUE_HOSTNAME="host-b", **env):
        wait_until(lambda: [c.state for c in copies(engine)] == ["finished"] * 5, 60,
                   message="all five versions to finish")
    spans = []
    for copy in sorted(copies(engine), key=lambda c: c.version):
        marks = STAMP.findall(zenodo_copies.error_info(engine, copy.id) or "")
        assert [m[1] for m in marks] == ["start 1", "finished"], marks
        spans.append((marks[0][0], marks[1][0]))
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start  # each version starts after the previous one finished: never two at once
    assert all(c.retries == 1 for c in copies(engine))
