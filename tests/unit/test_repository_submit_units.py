"""Pure pieces of repository submissions: the states, the ARK in a download URI, the deposit job row,
and the hooks the capability registers for long_jobs."""
from __future__ import annotations

import json

from dqueue import flags, jobs
from dqueue.repository import store as repo
from dqueue.repository.states import REPO_STATES, SENT, RepoState
from dqueue.repository.submit import DEPOSIT_JOB, DEPOSIT_QUEUE, Outcome, SubmitResult, deposit_job


def test_the_states_are_dryads_strings() -> None:
    assert REPO_STATES == ("rejected_shutting_down", "enqueued", "processing", "provisional_complete",
                           "completed", "errored")
    assert RepoState("errored") is RepoState.ERRORED and str(RepoState.ENQUEUED) == "enqueued"
    assert RepoState.ENQUEUED not in SENT and RepoState.PROCESSING in SENT


def test_the_ark_round_trips_through_the_download_uri() -> None:
    ark = "ark:/13030/m5q82t8x"
    uri = repo.download_uri_for("https://merritt.cdlib.org", ark)
    assert uri == "https://merritt.cdlib.org/d/ark%3A%2F13030%2Fm5q82t8x"
    assert repo.ark_of(uri) == ark
    assert repo.ark_of("https://merritt.cdlib.org/d/ark:/13030/m5q82t8x/") == ark
    assert repo.ark_of("") is None and repo.ark_of("https://merritt.cdlib.org/m/x") is None


def test_the_deposit_job_row() -> None:
    job = deposit_job(42, True)
    assert json.loads(job.handler) == {"job": DEPOSIT_JOB, "args": {"force": True, "resource_id": 42}}
    assert job.queue == DEPOSIT_QUEUE == "submission"


def test_a_result_as_json() -> None:
    result = SubmitResult(7, Outcome.HELD, "held", "web-1", state_id=3, state=RepoState.REJECTED_SHUTTING_DOWN)
    assert result.as_dict() == {"resource_id": 7, "outcome": "held", "message": "held", "hostname": "web-1",
                                "forced": False, "state_id": 3, "job_id": None, "state": "rejected_shutting_down"}


def test_the_repository_registers_its_long_jobs_hooks() -> None:
    jobs.import_modules(jobs.BUILTIN_MODULES)
    assert "repository" in flags.scoped_restart_hooks()
    assert "repository" in flags.status_hooks()
    assert "zenodo" in flags.restart_hooks()  # the unscoped kind is unchanged
