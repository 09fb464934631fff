"""The one masker (dqueue.masking) and the private log file: no database, no subprocess."""
from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dqueue import config, logs, masking

TOKEN = "zen-T0KEN-0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_secrets() -> Iterator[None]:
    masking.forget_secrets()
    yield
    masking.forget_secrets()


def test_registered_secrets_are_hidden_also_percent_encoded() -> None:
    masking.add_secret("p@ss/w0rd!")
    masked = masking.mask("raw p@ss/w0rd! and quoted p%40ss%2Fw0rd%21")
    assert "w0rd" not in masked and masked.count("hidden") == 2


def test_short_values_are_not_registered() -> None:
    masking.add_secret("ab")
    masking.add_secret("")
    masking.add_secret(None)
    assert masking.mask("a tab, a slab") == "a tab, a slab"


def test_the_longest_secret_is_hidden_whole() -> None:
    masking.add_secret("abcd")
    masking.add_secret("abcdefgh-longer")
    assert masking.mask("x abcdefgh-longer y") == "x hidden y"


def test_register_settings_takes_every_secret_setting_and_the_database_password() -> None:
    settings = config.load(environ={}, database_url="mysql+pymysql://app:DbPa55word@db/q",
                           zenodo_token=TOKEN)
    assert TOKEN in config.secret_values(settings)
    masking.register_settings(settings)
    masked = masking.mask(f"token {TOKEN} password DbPa55word")
    assert TOKEN not in masked and "DbPa55word" not in masked


@pytest.mark.parametrize("text, secret, kept", [
    ("Authorization: Bearer xyz.abc-123", "xyz.abc-123", "Authorization: Bearer hidden"),
    ("{'Authorization': 'Basic dXNlcjpwYXNz', 'Accept': 'json'}", "dXNlcjpwYXNz", "'Accept': 'json'"),
    ('{"Authorization": "token ghp_abcdef123456"}', "ghp_abcdef123456", '"Authorization": "token hidden"'),
    ("authorization=Bearer%20s3cr3t-v4lue", "s3cr3t-v4lue", "authorization="),
    ("sent with Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi", "Bearer hidden"),
    ("GET https://z/api?access_token=T0K3N&x=1", "T0K3N", "access_token=hidden&x=1"),
    ("https://b.s3.amazonaws.com/f?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=deadbeef&X-Amz-Expires=60",
     "deadbeef", "X-Amz-Expires=60"),
    ("https://b.s3.amazonaws.com/f?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=deadbeef", "AKIA", "X-Amz-"),
    ("https://acct.blob.core.windows.net/c/f?sv=2020&sig=Zm9vYmFy%3D", "Zm9vYmFy", "sv=2020"),
    ("https://x/f?Expires=1&Signature=c2lnbmF0dXJl&Key-Pair-Id=K1", "c2lnbmF0dXJl", "Expires=1"),
    ("https://x/f?token=abc123def", "abc123def", "token=hidden"),
    ("fetch http://alice:PASSWORD@127.0.0.1:9/file failed", "PASSWORD", "http://alice:***@127.0.0.1:9/file"),
    ("mysql+pymysql://app:p%40ss@db:3306/q", "p%40ss", "mysql+pymysql://app:***@db:3306/q"),
    ("'https://u:p@ss:w@h/x'", "p@ss:w", "https://u:***@h/x"),
    ("ftp://:onlypass@h/x", "onlypass", "ftp://:***@h/x"),
])
def test_credentials_are_hidden_without_registration(text: str, secret: str, kept: str) -> None:
    masked = masking.mask(text)
    assert secret not in masked, masked
    assert kept in masked, masked


@pytest.mark.parametrize("text", [
    "mysql+pymysql://root@127.0.0.1:3306/db",
    "http://host:8080/path?x=1&page=2",
    "Authorization failed for user alice",
    "job.done id=3 job=t.record queue=default attempt=1/5 seconds=0.01",
    "a token of appreciation; signature required",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert masking.mask(text) == text


def test_extra_secrets_are_hidden_for_one_call() -> None:
    assert masking.mask(f"t={TOKEN}", TOKEN) == "t=hidden"
    assert masking.mask(f"t={TOKEN}") == f"t={TOKEN}"


def test_log_lines_and_tracebacks_are_masked(tmp_path: Path) -> None:
    masking.add_secret(TOKEN)
    path = tmp_path / "dqueue.log"
    logs.setup("INFO", filename=str(path))
    try:
        log = logging.getLogger("dqueue.test")
        log.info("calling %s with Authorization: Bearer %s", "https://u:pw1234@h/x", "abc.def")
        try:
            raise RuntimeError(f"failed with {TOKEN}")
        except RuntimeError:
            log.exception("job.failed %s", TOKEN)
    finally:
        for handler in list(logging.getLogger().handlers):
            handler.close()
            logging.getLogger().removeHandler(handler)
    text = path.read_text()
    assert "RuntimeError: failed with hidden" in text and "job.failed hidden" in text
    for secret in (TOKEN, "pw1234", "abc.def"):
        assert secret not in text


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_the_log_file_is_created_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    path = tmp_path / "delayed_job.log"
    old = os.umask(umask)
    try:
        logs.open_private(str(path))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_an_open_log_file_is_narrowed_a_private_one_is_not_widened(tmp_path: Path) -> None:
    wide, narrow = tmp_path / "wide.log", tmp_path / "narrow.log"
    wide.write_text("old\n")
    narrow.write_text("old\n")
    wide.chmod(0o666)
    narrow.chmod(0o600)
    logs.open_private(str(wide))
    logs.open_private(str(narrow))
    assert stat.S_IMODE(wide.stat().st_mode) == 0o640 and wide.read_text() == "old\n"
    assert stat.S_IMODE(narrow.stat().st_mode) == 0o600


def test_cap_error_masks_every_stored_error_before_cutting_it() -> None:
    from dqueue.store.queue import cap_error

    masking.add_secret(TOKEN)
    assert cap_error(f"RuntimeError: {TOKEN} at https://u:pw1234@h/x") == \
        "RuntimeError: hidden at https://u:***@h/x"
    # A secret across the place where a long error is cut is masked whole, not left half-visible.
    limit = 1000
    head = limit // 4
    text = "a" * (head - 5) + TOKEN + "b" * 5000
    capped = cap_error(text, limit)
    assert TOKEN[:5] not in capped and TOKEN[-5:] not in capped and "characters cut" in capped
