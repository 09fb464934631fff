"""dqueue: a database-backed delayed-job queue daemon.

    import dqueue

    @dqueue.job("mail.send", queue="mail", max_attempts=5)
    def send(to: str) -> None: ...

    dqueue.enqueue("mail.send", {"to": "a@example.org"})
"""
from .client import Client, JobSpec, UnknownJobError, enqueue, enqueue_many
from .errors import PermanentError, Reschedule
from .jobs import RetryPolicy, job

__all__ = ["Client", "JobSpec", "UnknownJobError", "enqueue", "enqueue_many", "PermanentError",
           "Reschedule", "RetryPolicy", "job"]
__version__ = "0.1.0"
