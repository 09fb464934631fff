"""The singleton guard under a real race: 20 starts from two OS processes at the same instant
(ten threads each, one connection each): exactly one wins, the others are refused."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from sqlalchemy import Engine

from tests.helpers import cli_env, rows

PER_PROCESS = 10


def test_twenty_simultaneous_starts_from_two_processes_one_wins(engine: Engine, db_url: str) -> None:
    at = time.time() + 3.0  # both processes are up and connected by then
    code = "from tests.batch_support import race; race()"
    procs = [subprocess.Popen([sys.executable, "-c", code, db_url, str(at), str(PER_PROCESS)],
                              env=cli_env(db_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outcomes: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outcomes += json.loads(out)
    assert len(outcomes) == 2 * PER_PROCESS
    assert [o for o in outcomes if o not in ("won", "refused")] == []
    assert outcomes.count("won") == 1
    assert rows(engine, "SELECT status FROM batch_job_execution") == [("STARTING",)]
    assert len(rows(engine, "SELECT job_instance_id FROM batch_job_instance")) == 1
    assert len(rows(engine, "SELECT id FROM delayed_jobs")) == 1
