"""A TCP proxy that a test controls, to cut PostgreSQL or Redis without touching them.

The machine's own PostgreSQL and Redis stay up; the processes under test reach them through
``TcpProxy``, on a loopback port of its own, and the test decides what that port does:

- ``restore()``: forward both ways (the normal state);
- ``cut()``: every open connection is reset and every new one is accepted and reset at once,
  as a server that went away looks to its clients (``connection reset``, fast);
- ``blackhole()``: connections are accepted and whatever is sent is swallowed, with no answer
  and no reset, as a host that stopped answering looks (only timeouts end a call).

Threads, not asyncio: a test drives it from synchronous code. Every thread is a daemon and
``close()`` ends them all.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

_OPEN, _CUT, _BLACKHOLE = "open", "cut", "blackhole"


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), not a polite FIN: what a dead server's peer sees."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


@dataclass(eq=False)
class _Pair:
    client: socket.socket
    upstream: socket.socket | None
    closed: threading.Event = field(default_factory=threading.Event)

    def close(self, *, reset: bool) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            if reset:
                _reset(sock)
            else:
                with contextlib.suppress(OSError):
                    sock.close()


class TcpProxy:
    """Listens on 127.0.0.1 (a free port) and forwards to ``target_host:target_port``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._mode = _OPEN
        self._lock = threading.Lock()
        self._pairs: set[_Pair] = set()
        self._stopped = threading.Event()
        self.accepted = 0  # connections accepted, whatever the mode
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="tcp-proxy")
        self._thread.start()

    # --- what the test calls -------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self._mode

    def cut(self) -> None:
        """Reset every connection and refuse (accept and reset) new ones until ``restore``."""
        with self._lock:
            self._mode = _CUT
            pairs = list(self._pairs)
        for pair in pairs:
            pair.close(reset=True)

    def blackhole(self) -> None:
        """Stop answering: bytes sent through any connection, open or new, go nowhere."""
        with self._lock:
            self._mode = _BLACKHOLE

    def restore(self) -> None:
        """Forward again. Connections blackholed meanwhile are reset: their streams lost data."""
        with self._lock:
            was = self._mode
            self._mode = _OPEN
            pairs = list(self._pairs) if was == _BLACKHOLE else []
        for pair in pairs:
            pair.close(reset=True)

    def close(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            pair.close(reset=True)
        self._thread.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- inside -------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            mode = self._mode
            if mode == _CUT:
                _reset(client)
                continue
            upstream = None
            if mode == _OPEN:
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    _reset(client)
                    continue
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.add(pair)
            threading.Thread(target=self._pump, args=(pair, True), daemon=True).start()
            if upstream is not None:
                threading.Thread(target=self._pump, args=(pair, False), daemon=True).start()

    def _pump(self, pair: _Pair, from_client: bool) -> None:
        source = pair.client if from_client else pair.upstream
        destination = pair.upstream if from_client else pair.client
        assert source is not None  # noqa: S101 - a pump only runs for a socket it has
        source.settimeout(0.2)
        try:
            while not pair.closed.is_set() and not self._stopped.is_set():
                try:
                    data = source.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                if self._mode != _OPEN or destination is None:
                    continue  # blackholed: swallowed, never answered
                destination.sendall(data)
        except OSError:
            pass
        finally:
            # One side ended: end the other politely (unless a cut already reset both).
            pair.close(reset=False)
            with self._lock:
                self._pairs.discard(pair)
