"""The listening sockets of ``doorward serve``: bound by serve itself, so a busy port is one error line.

With several workers on Linux each worker accepts on a socket of its own in one SO_REUSEPORT group,
and the kernel spreads connections over them.
"""

from __future__ import annotations

import socket
import sys


def reuse_port_supported() -> bool:
    """Whether the kernel spreads connections over SO_REUSEPORT sockets (Linux does)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _new_socket(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        # IPv6 only, as asyncio's create_server listens: "--host ::" must not take IPv4
        # connections with N workers and refuse them with one.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """One socket listening on ``host:port`` (one worker, or workers sharing it), or an OSError.

    Bound here rather than by uvicorn, which logs a busy port and exits 3: ``serve`` says it in one line.
    """
    sock = _new_socket(host)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def listening_sockets(host: str, port: int, count: int, backlog: int) -> list[socket.socket]:
    """``count`` sockets listening on ``host:port`` in one SO_REUSEPORT group, or an OSError.

    Any process of the same user may join such a group, so the port is first bound once without
    SO_REUSEPORT: if anything listens there already (a doorward left running, say), that fails
    with EADDRINUSE, rather than the group silently sharing its connections.
    """
    sockets: list[socket.socket] = []
    try:
        with _new_socket(host) as probe:
            probe.bind((host, port))
            port = probe.getsockname()[1]  # port 0: the group takes the port the probe was given
        for _ in range(count):
            sock = _new_socket(host)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(backlog)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets
