"""systemd/dqueue-web.service: what it runs, how it stops, and that systemd-analyze accepts and rates it."""
from __future__ import annotations

import re
import subprocess

from dqueue.web.server import DRAIN, POLL
from dqueue.worker.supervisor import EXIT_CONFIG
from tests.unit.test_systemd_unit import CHECK, ROOT, directives, needs_systemd_analyze

UNIT = ROOT / "systemd" / "dqueue-web.service"


def test_unit_runs_dqueue_web_and_does_not_restart_on_a_config_error() -> None:
    d = directives(UNIT.read_text())
    assert re.fullmatch(r"\S+/dqueue web", d["ExecStart"][0])
    assert d["Restart"] == ["on-failure"]
    assert d["RestartPreventExitStatus"] == [str(EXIT_CONFIG)]  # a bad token, an uninitialised database
    assert float(d["TimeoutStopSec"][0]) > DRAIN + POLL  # SIGTERM: the drain ends before a SIGKILL
    assert d["User"] and d["User"] != ["root"]
    assert d["EnvironmentFile"] == ["-/etc/dqueue/dqueue.env"]
    assert d["CapabilityBoundingSet"] == [""]


@needs_systemd_analyze
def test_unit_verifies_clean_and_exposure_is_ok_or_better() -> None:
    result = subprocess.run([str(CHECK), str(UNIT)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: systemd-analyze verify is clean" in result.stdout
