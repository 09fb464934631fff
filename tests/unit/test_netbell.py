"""The network doorbell without a database: the wire format, the secret, the client's cache, and
a worker's sleep that a flood of datagrams cannot turn into a busy loop."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from dqueue import config, netbell
from dqueue.worker.loop import Worker


@pytest.fixture
def bell() -> Iterator[netbell.NetBell]:
    opened = netbell.NetBell.open("127.0.0.1")
    assert opened is not None
    yield opened
    opened.close()


def _send(entry: str, payload: bytes) -> None:
    target = netbell.parse(entry)
    assert target is not None
    with socket.socket(target[0], socket.SOCK_DGRAM) as s:
        s.sendto(payload, target[1])


def _arrived(bell: netbell.NetBell) -> None:
    """Block until a datagram is queued on the bell (loopback delivery is immediate, but be sure)."""
    bell.sock.setblocking(True)
    try:
        bell.sock.recv(1, socket.MSG_PEEK)
    finally:
        bell.sock.setblocking(False)


def test_the_setting_is_auto_or_off_and_auto_means_mariadb_and_mysql_only() -> None:
    assert config.load(environ={}).network_doorbell == "auto"
    assert config.load(environ={"DQUEUE_NETWORK_DOORBELL": "off"}).network_doorbell == "off"
    with pytest.raises(config.ConfigError, match="network_doorbell"):
        config.load(environ={"DQUEUE_NETWORK_DOORBELL": "on"})
    assert netbell.wanted("auto", "mysql") and netbell.wanted("auto", "mariadb")
    assert not netbell.wanted("auto", "sqlite") and not netbell.wanted("off", "mysql")


def test_registry_entries_parse_and_anything_else_is_ignored() -> None:
    assert netbell.parse("udp 10.0.0.7 40123 abc") == (socket.AF_INET, ("10.0.0.7", 40123), b"abc")
    assert netbell.parse("udp fd00::7 40123 abc") == (socket.AF_INET6, ("fd00::7", 40123), b"abc")
    for bad in ("", "udp 10.0.0.7 40123", "tcp 10.0.0.7 40123 abc", "udp 10.0.0.7 port abc"):
        assert netbell.parse(bad) is None


def test_only_the_secret_rings(bell: netbell.NetBell) -> None:
    kind, ip, port, secret = bell.address.split()
    assert (kind, ip, len(secret)) == ("udp", "127.0.0.1", 32) and int(port) > 0
    for noise in (b"", b"x", secret[:-1].encode(), secret.encode() + b"x", b"0" * 32):
        _send(bell.address, noise)
        _arrived(bell)
        assert not bell.answer()
        assert bell.quiet_until > time.monotonic()  # after noise, the socket is left alone a while
    _send(bell.address, secret.encode())
    _arrived(bell)
    assert bell.answer()
    assert not bell.answer()  # drained


def test_the_ringer_skips_this_hosts_workers_and_reads_the_list_every_few_seconds(
        bell: netbell.NetBell) -> None:
    other = netbell.NetBell.open("127.0.0.1")
    assert other is not None
    calls = []

    def lookup() -> list[tuple[str, str]]:
        calls.append(1)
        return [("far", bell.address), ("here", other.address), ("far", "garbage")]
    try:
        ringer = netbell.Ringer(lookup, "here", same_host=False)
        assert ringer.ring() == 1 and ringer.ring() == 1
        assert len(calls) == 1  # one lookup serves every ring for netbell.REFRESH seconds
        _arrived(bell)
        assert bell.answer() and not other.answer()
        assert netbell.Ringer(lookup, "here", same_host=True).ring() == 2
    finally:
        other.close()
        ringer.close()


def test_a_failed_lookup_costs_a_ring_not_an_enqueue() -> None:
    def broken() -> list[tuple[str, str]]:
        raise RuntimeError("no database")
    ringer = netbell.Ringer(broken, "here", same_host=False)
    assert ringer.ring() == 0


def _worker(tmp_path: Path, bell: netbell.NetBell) -> Worker:
    w = Worker(config.load(environ={}, database_url=f"sqlite:///{tmp_path / 'unused.sqlite3'}"))
    w.netbell = bell
    return w


def test_a_ring_ends_the_sleep_but_never_sooner_than_the_gap_after_the_last_poll(
        tmp_path: Path, bell: netbell.NetBell) -> None:
    w = _worker(tmp_path, bell)
    _send(bell.address, bell.secret)  # queued before the sleep, as a ring that came during a poll
    _arrived(bell)
    started = time.monotonic()
    w._sleep(5.0)
    assert netbell.RING_GAP <= time.monotonic() - started < 0.5


def test_a_flood_of_noise_neither_wakes_nor_busies_a_sleeping_worker(
        tmp_path: Path, bell: netbell.NetBell) -> None:
    w = _worker(tmp_path, bell)
    stop = threading.Event()
    sent = []

    def flood() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            address = bell.sock.getsockname()
            while not stop.is_set():
                for _ in range(100):
                    s.sendto(b"not the secret", address)
                sent.append(100)
    sender = threading.Thread(target=flood)
    sender.start()
    try:
        wall, cpu = time.monotonic(), time.thread_time()
        w._sleep(1.0)
        wall, cpu = time.monotonic() - wall, time.thread_time() - cpu
    finally:
        stop.set()
        sender.join()
    assert sum(sent) > 1000, "the flood did not flood"
    assert wall >= 0.95  # noise never ended the sleep
    assert cpu < 0.15, f"the sleeping worker used {cpu:.3f} s of CPU in {wall:.2f} s under a flood"
