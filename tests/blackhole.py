"""A TCP relay to a real server that can be made to stop answering, as a dead network would.

``Relay(5432).start()`` listens on a free port of 127.0.0.1 and relays each connection to
the target port.  After ``blackhole()`` nothing passes either way: open connections stay
open and silent, and new ones are accepted and never answered, so a client's connect and
its queries hang instead of failing, as when a firewall drops a database host's packets.
(A closed port would fail at once and prove nothing.)  ``restore()`` lets everything pass
again; ``close()`` ends every connection, which frees whatever still waits on one.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time


class Relay:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.dark = False
        self.closed = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._held: list[socket.socket] = []  # accepted while dark, not yet relayed
        self._lock = threading.Lock()

    def start(self) -> Relay:
        threading.Thread(target=self._accept, daemon=True, name="relay-accept").start()
        return self

    def blackhole(self) -> None:
        self.dark = True

    def restore(self) -> None:
        with self._lock:
            self.dark = False
            held, self._held = self._held, []
        for client in held:
            self._relay(client)

    def close(self) -> None:
        self.closed = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets + self._held:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self.dark:
                    self._held.append(client)
                    continue
            self._relay(client)

    def _relay(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets += [client, server]
        for src, dst in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while not self.closed:
            if self.dark:  # leave the bytes unread: nothing reaches the other side
                time.sleep(0.05)
                continue
            try:
                readable, _, _ = select.select([src], [], [], 0.1)
                if not readable:
                    continue
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            except (OSError, ValueError):
                break
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
