"""A TCP proxy a test can cut, blackhole and restore: the network between doorward and its database."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``.

    ``cut()`` drops every connection and resets new ones (a database that went away);
    ``blackhole()`` accepts and then says nothing (a network that hangs);
    ``freeze()`` keeps every connection open but forwards nothing more, either way, and holds new ones
    unanswered (a server that stopped: SIGSTOP, a stalled disk, a full network buffer);
    ``restore()`` forwards again.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._mode = "forward"
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False
        self._frozen = threading.Event()  # set while data may flow; cleared by freeze()
        self._frozen.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self._set_mode("cut")

    def blackhole(self) -> None:
        self._set_mode("blackhole")

    def freeze(self) -> None:
        with self._lock:
            self._mode = "freeze"
            self._frozen.clear()

    def restore(self) -> None:
        self._set_mode("forward")

    def close(self) -> None:
        self._closed = True
        self._set_mode("cut")
        self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *_: object | TracebackType) -> None:
        self.close()

    def _set_mode(self, mode: str) -> None:
        with self._lock:
            self._mode = mode
            doomed, self._sockets = self._sockets, []
            self._frozen.set()  # pumps held by a freeze go on, onto sockets that are now closed
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                mode = self._mode
                if mode in {"blackhole", "freeze"}:
                    self._sockets.append(client)  # held open, never answered
                    continue
            if mode == "cut":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()  # RST
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._frozen.wait()  # a freeze holds what was read: it reaches nobody
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
