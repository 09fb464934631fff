from __future__ import annotations

import datetime as dt
import random

import pytest

from dqueue import client, jobs
from dqueue.store.queue import cap_error


def test_handler_round_trip_is_plain_json() -> None:
    text = jobs.encode_handler("a.b", {"x": [1, "é"]})
    assert text == '{"args":{"x":[1,"é"]},"job":"a.b"}'
    assert jobs.decode_handler(text) == ("a.b", {"x": [1, "é"]})


@pytest.mark.parametrize("handler, message", [
    (None, "NULL"), ("{", "not valid JSON"), ("[1]", "must be a JSON object"),
    ('{"args": {}}', "must be a JSON object"), ('{"job": "x", "args": 3}', "args must be"),
    ('{"job": "x", "args": {}, "eval": "rm -rf"}', "unknown keys"),
    ("--- !ruby/object:Delayed::PerformableMethod\n", "not valid JSON"),
])
def test_bad_handlers_are_rejected_with_a_reason(handler: str | None, message: str) -> None:
    with pytest.raises(jobs.HandlerError, match=message):
        jobs.decode_handler(handler)


def test_unknown_job_names_the_known_ones() -> None:
    jobs.job("unit.known")(lambda: None)
    with pytest.raises(jobs.HandlerError, match="unknown job 'unit.nope'.*unit.known"):
        jobs.resolve('{"job": "unit.nope", "args": {}}')


def test_args_that_json_cannot_hold_are_refused_at_enqueue() -> None:
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        jobs.encode_handler("x", {"when": dt.datetime.now()})
    with pytest.raises(ValueError, match="JSON object"):
        jobs.encode_handler("x", [1])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        jobs.encode_handler("x", {"f": float("nan")})


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = jobs.RetryPolicy()
    rng = random.Random(1)
    delays = [policy.delay(n, 5, 3600, rng) for n in range(1, 15)]
    for n, d in enumerate(delays, start=1):
        ceiling = min(5 * 2 ** (n - 1), 3600)
        assert ceiling / 2 <= d <= ceiling
    assert len({round(policy.delay(3, 5, 3600), 6) for _ in range(20)}) > 1  # jittered


def test_registration_conflicts_are_refused() -> None:
    jobs.job("unit.dup")(lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        @jobs.job("unit.dup")
        def other() -> None: ...


def test_enqueue_validation_uses_registered_defaults() -> None:
    jobs.job("unit.mail", queue="mail", priority=-3)(lambda to: None)
    row = client.build(client.JobSpec("unit.mail", {"to": "x"}))
    assert (row.queue, row.priority) == ("mail", -3)
    with pytest.raises(client.UnknownJobError):
        client.build(client.JobSpec("unit.typo"))
    assert client.build(client.JobSpec("unit.typo"), check=False).queue == "default"
    with pytest.raises(ValueError, match="priority"):
        client.build(client.JobSpec("unit.mail", priority="high"))  # type: ignore[arg-type]
    aware = dt.datetime(2030, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert client.build(client.JobSpec("unit.mail", run_at=aware)).run_at == dt.datetime(2030, 1, 1, 10)


def test_last_error_keeps_head_and_tail() -> None:
    text = "HEAD" + "x" * 100_000 + "CAUSE"
    capped = cap_error(text, 1000)
    assert len(capped) <= 1000 and capped.startswith("HEAD") and capped.endswith("CAUSE")
