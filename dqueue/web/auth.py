"""Bearer tokens: the configured ones, as SHA-256 digests, and the constant-time check of a request's.

A configured token is the secret itself or ``sha256:<64 hex digits>`` of it.  Both are kept as
digests, and a presented token is hashed and compared with every one of them by
``hmac.compare_digest``, without stopping at the first match: the time taken tells a caller neither
how much of a token was right nor which of the configured tokens it matched.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

HASH_PREFIX = "sha256:"
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
SHORT_TOKEN = 16  # a plain token shorter than this is guessable: dqueue web warns


class TokenError(ValueError):
    """A configured token that is neither a secret nor ``sha256:`` and 64 hex digits."""


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def parse_token(spec: str, position: int) -> bytes:
    """The SHA-256 digest a configured token stands for; ``position`` (1-based) names it in errors,
    never its value."""
    if spec.lower().startswith(HASH_PREFIX):
        hexdigits = spec[len(HASH_PREFIX):]
        if not _HEX64.fullmatch(hexdigits):
            raise TokenError(f"web token #{position}: 'sha256:' must be followed by the 64 hex digits "
                             "of the token's SHA-256")
        return bytes.fromhex(hexdigits)
    if not spec.strip() or spec != spec.strip():
        raise TokenError(f"web token #{position}: empty or has spaces around it")
    return digest(spec)


@dataclass(frozen=True)
class Tokens:
    digests: tuple[bytes, ...]
    short: int = 0  # plain tokens shorter than SHORT_TOKEN, for the start-up warning

    @classmethod
    def parse(cls, specs: tuple[str, ...]) -> Tokens:
        """TokenError on the first malformed token."""
        digests = tuple(parse_token(spec, i) for i, spec in enumerate(specs, 1))
        short = sum(1 for s in specs if not s.lower().startswith(HASH_PREFIX) and len(s) < SHORT_TOKEN)
        return cls(digests, short)

    def __bool__(self) -> bool:
        return bool(self.digests)

    def accepts(self, presented: str | None) -> bool:
        """Whether ``presented`` is one of the tokens; False when none are configured."""
        if presented is None:
            return False
        wanted = digest(presented)
        found = False
        for d in self.digests:
            found |= hmac.compare_digest(wanted, d)  # no early exit: every digest is compared
        return found


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive, RFC 6750)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token
