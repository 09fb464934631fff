"""A nudge over UDP for idle workers on other hosts than the enqueuer, rung after a commit.

The UNIX doorbell (doorbell.py) wakes the workers on the enqueuer's host.  A worker on another
host would otherwise find the job only at its next poll, and polling fast enough for a 20 ms
p50 costs more than an idle worker may (docs/benchmarks.md, "Where the time goes").  So each
worker on MariaDB/MySQL also listens on a UDP port, bound to the address its database connection
leaves from (reachable from the database's network), and registers ``udp <ip> <port> <secret>``
in its ``dqueue_processes`` row.  After a commit, a client sends the secret, alone, in one
datagram to each live worker's bell on another host.  It reads that list at most every
``REFRESH`` seconds, so an enqueue pays one ``sendto`` per remote worker and no query.

Like the UNIX bell, ringing is best effort: a lost datagram, a stale list or a firewall cost
latency only, because polling still finds the job.  A datagram without the worker's secret is
dropped, and a flood of them, or of rings, cannot make a worker poll in a tight loop: a ring
starts a poll no sooner than ``RING_GAP`` after the previous one, and after noise the socket is
not read for ``NOISE_GAP``.
"""
from __future__ import annotations

import hmac
import logging
import secrets
import socket
import time
from typing import Callable, Sequence

log = logging.getLogger("dqueue.netbell")
RING_GAP = 0.002  # seconds: the least time between a poll and a poll that a ring starts
NOISE_GAP = 0.01  # seconds the socket is left unread after datagrams without the secret
MAX_READS = 64  # datagrams read per wake-up; the kernel drops what a flood queues beyond its buffer
REFRESH = 2.0  # seconds a client trusts its list of bells


def wanted(setting: str, dialect_name: str) -> bool:
    """Whether ``network_doorbell`` is on for this database (SQLite: one host, no network)."""
    return setting != "off" and dialect_name in ("mysql", "mariadb")


class NetBell:
    """A worker's end: a non-blocking UDP socket that only its secret counts as a ring on."""

    def __init__(self, sock: socket.socket, secret: bytes) -> None:
        self.sock = sock
        self.secret = secret
        self.quiet_until = 0.0  # time.monotonic() before which the socket is not to be read

    @classmethod
    def open(cls, ip: str | None) -> "NetBell | None":
        if ip is None:
            log.info("netbell.off: the database connection has no IP address to listen on")
            return None
        try:
            sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((ip, 0))
            sock.setblocking(False)
        except OSError as exc:
            log.warning("netbell.off ip=%s error=%s: workers on other hosts than the enqueuer "
                        "will rely on polling", ip, exc)
            return None
        return cls(sock, secrets.token_hex(16).encode())

    @property
    def address(self) -> str:
        """The registry entry: ``udp <ip> <port> <secret>``."""
        ip, port = self.sock.getsockname()[:2]
        return f"udp {ip} {port} {self.secret.decode()}"

    def fileno(self) -> int:
        return self.sock.fileno()

    def answer(self) -> bool:
        """Read what has arrived; True if a datagram carried the secret (a ring)."""
        rung = noise = False
        for _ in range(MAX_READS):
            try:
                data = self.sock.recv(len(self.secret) + 1)  # a longer datagram cannot match
            except OSError:  # BlockingIOError: nothing left
                break
            if hmac.compare_digest(data, self.secret):
                rung = True
            else:
                noise = True
        if noise and not rung:
            self.quiet_until = time.monotonic() + NOISE_GAP
        return rung

    def close(self) -> None:
        self.sock.close()


Target = tuple[socket.AddressFamily, tuple[str, int], bytes]


def parse(entry: str) -> Target | None:
    """A registry entry as (address family, (ip, port), secret); None if it is not one."""
    parts = entry.split()
    if len(parts) != 4 or parts[0] != "udp" or not parts[2].isdigit():
        return None
    family = socket.AF_INET6 if ":" in parts[1] else socket.AF_INET
    return family, (parts[1], int(parts[2])), parts[3].encode()


class Ringer:
    """A client's end: rings the network bells of live workers, from a list read every REFRESH s.

    ``lookup`` returns (hostname, registry entry) of the live workers' bells; it runs at the
    first ring and then at the first ring after the list is REFRESH seconds old.  Bells of
    workers on ``hostname`` are skipped unless ``same_host``: the UNIX doorbell wakes those.
    """

    def __init__(self, lookup: Callable[[], Sequence[tuple[str, str]]], hostname: str,
                 same_host: bool) -> None:
        self.lookup = lookup
        self.hostname = hostname
        self.same_host = same_host
        self.targets: list[Target] = []
        self._expires = float("-inf")
        self._senders: dict[socket.AddressFamily, socket.socket] = {}
        self._failing = False

    def refresh(self) -> None:
        """Read the list now if it is older than REFRESH seconds.  Never raises."""
        now = time.monotonic()
        if now < self._expires:
            return
        self._expires = now + REFRESH  # a failed lookup is not retried on every enqueue either
        try:
            found = self.lookup()
        except Exception as exc:  # noqa: BLE001 - a lookup may cost latency, never an enqueue
            if not self._failing:
                log.warning("netbell.lookup_failed error=%s: rings to other hosts wait for the "
                            "next lookup", type(exc).__name__)
            self._failing = True
            return
        self._failing = False
        targets = [parse(entry) for host, entry in found if self.same_host or host != self.hostname]
        self.targets = [t for t in targets if t is not None]

    def ring(self) -> int:
        """Send each bell its secret; returns how many were sent.  Never raises."""
        self.refresh()
        sent = 0
        for family, address, secret in self.targets:
            try:
                sender = self._senders.get(family)
                if sender is None:
                    sender = self._senders[family] = socket.socket(family, socket.SOCK_DGRAM)
                    sender.setblocking(False)
                sender.sendto(secret, address)
                sent += 1
            except OSError:
                pass  # unreachable, or the send buffer is full: that worker will poll
        return sent

    def close(self) -> None:
        for sender in self._senders.values():
            sender.close()
        self._senders.clear()
