"""Bearer tokens: plain or as SHA-256, parsed once, every configured digest compared."""
from __future__ import annotations

import hashlib
import hmac

import pytest

from dqueue.web import auth
from dqueue.web.auth import TokenError, Tokens, bearer

PLAIN = "s3cret-token-for-the-api"
HASHED = "sha256:" + hashlib.sha256(b"another-token-0123456789").hexdigest()


def test_plain_and_hashed_tokens_are_accepted_and_nothing_else() -> None:
    tokens = Tokens.parse((PLAIN, HASHED))
    assert tokens.accepts(PLAIN)
    assert tokens.accepts("another-token-0123456789")
    assert not tokens.accepts(HASHED)  # the hash is not itself a token
    assert not tokens.accepts(PLAIN[:-1])
    assert not tokens.accepts(PLAIN + "x")
    assert not tokens.accepts("")
    assert not tokens.accepts(None)


def test_the_hash_prefix_and_its_hex_digits_are_case_insensitive() -> None:
    assert Tokens.parse(("SHA256:" + HASHED[7:].upper(),)).accepts("another-token-0123456789")


def test_no_tokens_accepts_nobody() -> None:
    tokens = Tokens.parse(())
    assert not tokens
    assert not tokens.accepts(PLAIN)
    assert not tokens.accepts("")


@pytest.mark.parametrize("spec", ["sha256:abc", "sha256:" + "g" * 64, "sha256:" + "a" * 65, "sha256:",
                                  "", "  ", " padded-token-value "])
def test_malformed_tokens_are_refused_by_position_without_their_value(spec: str) -> None:
    with pytest.raises(TokenError) as caught:
        Tokens.parse((PLAIN, spec))
    assert "#2" in str(caught.value)
    if spec.strip() not in ("", "sha256:"):
        assert spec.strip() not in str(caught.value)


def test_every_digest_is_compared_even_after_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[bytes] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)
    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    tokens = Tokens.parse((PLAIN, HASHED, "third-token-abcdefgh"))
    assert tokens.accepts(PLAIN)
    assert compared == list(tokens.digests)  # the first matched, the other two were compared too


def test_short_plain_tokens_are_counted_for_the_warning() -> None:
    assert Tokens.parse(("short", PLAIN, HASHED)).short == 1


@pytest.mark.parametrize("header,token", [
    ("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER  abc ", "abc"),
    ("Basic abc", None), ("Bearer", None), ("Bearer ", None), ("abc", None), ("", None), (None, None),
    ("Bearer a b", None),
])
def test_bearer_header(header: str | None, token: str | None) -> None:
    assert bearer(header) == token
