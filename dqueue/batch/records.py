"""What the batch tables say about one execution, as read by ``store`` and shown by the CLI and
the web API (``Execution.as_dict``: Spring Batch Admin's camelCase names)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from .status import RUNNING, BatchStatus


def _status(value: str | None) -> BatchStatus | None:
    """A status written by hand may be anything: unknown text reads as UNKNOWN, not an error."""
    if value is None:
        return None
    try:
        return BatchStatus(value)
    except ValueError:
        return BatchStatus.UNKNOWN


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat() + "Z"  # stored as naive UTC


@dataclass(frozen=True)
class Step:
    step_execution_id: int
    step_name: str
    status: BatchStatus | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    exit_code: str | None
    exit_message: str | None
    last_updated: dt.datetime | None
    counts: dict[str, int | None] = field(default_factory=dict)  # read_count, write_count, ...

    def as_dict(self) -> dict[str, Any]:
        return {"stepExecutionId": self.step_execution_id, "stepName": self.step_name,
                "status": self.status.value if self.status else None,
                "startTime": _time(self.start_time), "endTime": _time(self.end_time),
                "exitCode": self.exit_code, "exitMessage": self.exit_message,
                "lastUpdated": _time(self.last_updated), **_camel(self.counts)}


def _camel(counts: dict[str, int | None]) -> dict[str, int | None]:
    out = {}
    for name, value in counts.items():
        head, *rest = name.split("_")
        out[head + "".join(part.title() for part in rest)] = value
    return out


@dataclass(frozen=True)
class Execution:
    job_execution_id: int
    job_instance_id: int
    name: str
    status: BatchStatus | None
    create_time: dt.datetime | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    exit_code: str | None
    exit_message: str | None
    last_updated: dt.datetime | None
    stop_request: str | None = None
    delayed_job_id: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] | None = None
    steps: tuple[Step, ...] = ()

    @property
    def running(self) -> bool:
        return self.status in RUNNING

    def as_dict(self) -> dict[str, Any]:
        return {"jobExecutionId": self.job_execution_id, "jobInstanceId": self.job_instance_id,
                "name": self.name, "status": self.status.value if self.status else None,
                "createTime": _time(self.create_time), "startTime": _time(self.start_time),
                "endTime": _time(self.end_time), "exitCode": self.exit_code,
                "exitMessage": self.exit_message, "lastUpdated": _time(self.last_updated),
                "stopRequest": self.stop_request, "delayedJobId": self.delayed_job_id,
                "params": self.params, "progress": self.progress,
                "steps": [s.as_dict() for s in self.steps]}
