"""Deadlines for a server connection: idle between requests, then one deadline for a whole request.

A timeout per ``recv`` (what ``socket.settimeout`` gives) lets a client that sends one byte just before
each timeout hold its connection and thread forever; here each read waits only for what is left of the
connection's current deadline.
"""

from __future__ import annotations

import io
import socket
import time
from typing import Any

from medallion.core.config import ServeConfig


class Clock:
    """The connection's current deadline: idle between requests, ``read_s`` once a request began."""

    def __init__(self, limits: ServeConfig) -> None:
        self.idle_s, self.read_s = limits.idle_timeout_s, limits.read_timeout_s
        self.waiting = True
        self.deadline = time.monotonic() + self.idle_s

    def idle(self) -> None:
        self.waiting = True
        self.deadline = time.monotonic() + self.idle_s

    def received(self) -> None:
        if self.waiting:
            self.waiting = False
            self.deadline = time.monotonic() + self.read_s


class DeadlineReader(io.RawIOBase):
    """The socket's bytes, each read bounded by the clock's deadline (not a fresh timeout per read, so a
    client trickling a byte at a time cannot hold its thread past the deadline)."""

    def __init__(self, sock: socket.socket, clock: Clock) -> None:
        self.sock, self.clock = sock, clock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.clock.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed")
        self.sock.settimeout(remaining)
        n = self.sock.recv_into(buffer)
        if n:
            self.clock.received()
        return n
