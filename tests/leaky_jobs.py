"""Jobs whose errors carry secrets (``--import tests.leaky_jobs``): the masker must hide them in
``last_error`` and the log, whatever job raised them (issue 7, point 7)."""
from __future__ import annotations

import logging

import dqueue
from dqueue import jobs

log = logging.getLogger("tests.leaky")
# Credentials that no setting registers: the masker must recognise them by their form.
BEARER = "xyz-bearer-secret-1"
URL_PASSWORD = "pw-in-url-2"
SIGNATURE = "sig-secret-3"
CREDENTIAL = "cred-secret-4"
UNREGISTERED = (BEARER, URL_PASSWORD, SIGNATURE, CREDENTIAL)


def _error() -> RuntimeError:
    token = jobs.current().settings.zenodo_token  # the configured secret, not in the job's args
    log.warning("leak.start token=%s Authorization: Bearer %s", token, BEARER)
    return RuntimeError(f"failed with token {token}\nAuthorization: Bearer {BEARER}\n"
                        f"fetching https://u:{URL_PASSWORD}@h.example/x and "
                        f"https://b.s3.example/f?X-Amz-Credential={CREDENTIAL}&X-Amz-Signature={SIGNATURE}")


@dqueue.job("t.leak", max_attempts=1)
def leak() -> None:
    raise _error()


@dqueue.job("t.leak_later", max_attempts=5, backoff_base=3600, backoff_max=3600)
def leak_later() -> None:
    """Fails once and is retried in an hour: its last_error is written by the retry path."""
    raise _error()
