"""The systemd unit: what it runs and how it stops, and that systemd-analyze accepts and rates it."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dqueue.config import Settings

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "delayed_job.service"
CHECK = ROOT / "scripts" / "check-systemd-unit"
needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (tool check)")


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_unit_runs_the_foreground_supervisor_and_stops_it_gracefully() -> None:
    d = directives(UNIT.read_text())
    assert re.search(r"/delayed_job run -n 3\b", d["ExecStart"][0])
    assert d["Restart"] == ["on-failure"]
    assert d["KillMode"] == ["mixed"]  # TERM to the supervisor only; it forwards to its workers
    defaults = Settings()
    # The supervisor SIGKILLs a stuck worker grace_period + kill_after + 5 s after TERM.
    assert float(d["TimeoutStopSec"][0]) > defaults.grace_period + defaults.kill_after + 5
    assert d["User"] and d["User"] != ["root"]
    assert d["WorkingDirectory"] and d["EnvironmentFile"]
    families = set(d["RestrictAddressFamilies"][0].split())
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= families  # MariaDB over TCP or its socket


@needs_systemd_analyze
def test_unit_verifies_clean_and_exposure_is_ok_or_better() -> None:
    result = subprocess.run([str(CHECK)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: systemd-analyze verify is clean" in result.stdout
    level = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", result.stdout)
    assert level and level.group(2) in {"PERFECT", "SAFE", "OK"}, result.stdout


@needs_systemd_analyze
def test_check_rejects_an_unhardened_unit(tmp_path: Path) -> None:
    hardening = re.compile(r"^(Protect|Private|Restrict|SystemCall|Capability|NoNewPrivileges|"
                           r"MemoryDeny|LockPersonality)")
    plain = "\n".join(line for line in UNIT.read_text().splitlines() if not hardening.match(line))
    unit = tmp_path / "delayed_job.service"
    unit.write_text(plain + "\n")
    result = subprocess.run([str(CHECK), str(unit)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "want OK or better" in result.stdout
