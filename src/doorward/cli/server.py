"""``doorward serve`` and ``doorward migrate``: bring the schema up to date and serve the app."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Annotated

import typer

from doorward.cli.base import app, fail, load_settings
from doorward.config import Settings

_log = logging.getLogger("doorward.cli")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    migrate: Annotated[bool, typer.Option(help="Bring the schema up to date first.")] = True,
) -> None:
    """Serve the HTTP API, migrating the database first.

    With --no-migrate, the schema must be up to date already. With several workers on Linux, each
    worker accepts on a socket of its own, and the workers share hashing processes.
    """
    import uvicorn

    from doorward.serve.hash_processes import Hashers, HashersNotReady
    from doorward.serve.sockets import listening_socket, listening_sockets, reuse_port_supported
    from doorward.serve.workers import GRACEFUL_SECONDS, Workers

    settings = load_settings()
    if migrate:
        _migrate(settings)
    else:
        _require_current_schema(settings)
    config = uvicorn.Config(
        "doorward.web.app:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,  # keep doorward's JSON logging
        # uvicorn's httptools protocol with doorward's limits, deadlines and JSON refusals.
        http="doorward.web.protocol:DoorwardHttpProtocol",
        proxy_headers=False,  # the client address comes from the socket (ASVS 4.1.3)
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
    )
    try:
        if workers > 1 and reuse_port_supported():
            sockets = listening_sockets(host, port, workers, config.backlog)
        else:  # one worker; or no kernel balancing: the workers share one socket, as under uvicorn's own
            sockets = [listening_socket(host, port, config.backlog)] * workers
    except OSError as exc:  # in use, not allowed, no such address, a name that does not resolve
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    if workers == 1:
        # uvicorn says where it listens only for a socket it bound itself.
        address = f"[{host}]" if ":" in host else host
        _log.info("serving on http://%s:%d (Ctrl+C to stop)", address, sockets[0].getsockname()[1])
        server = uvicorn.Server(config)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C: uvicorn has shut down already
            server.run(sockets=sockets)
        if not server.started:
            raise fail("the server did not start (its log is above)")
        return
    try:
        hashers = Hashers(settings.hash_workers)
    except OSError as exc:  # a TMPDIR too long for a socket's path, or not writable
        raise fail(f"cannot create the hashing processes' socket: {exc.strerror or exc}") from None
    # The workers read it when they start, and each logs what it hashes on (web/app.py).
    os.environ["DOORWARD_HASH_SOCKET"] = hashers.path
    try:
        with _shared_metrics(settings) as on_exit:
            hashers.start()
            supervisor = Workers(
                config, sockets, on_check=hashers.replace_dead, on_reload=hashers.restart, on_exit=on_exit
            )
            served = supervisor.run()
    except HashersNotReady:
        raise fail("the hashing processes did not start (their errors are above)") from None
    finally:
        hashers.stop()
    if not served:
        raise fail("a worker failed to start (its log is above)")


@contextlib.contextmanager
def _shared_metrics(settings: Settings) -> Iterator[Callable[[int], None]]:
    """With metrics on, every worker writes its figures to files in a directory of this server's
    (prometheus_client's multiprocess mode), read by each scrape: on the main port by whichever
    worker answers, on DOORWARD_METRICS_ADDRESS by this process. Yields what to do when a worker
    has ended: drop its live gauges (its counts stay, they were counted). Removed at the end."""
    if not settings.metrics_enabled:
        yield lambda _pid: None
        return
    from doorward.metrics import MULTIPROC_DIR, AddressServer, forget_process, scrape_directory

    directory = tempfile.mkdtemp(prefix="doorward-metrics-")  # mode 0700
    os.environ[MULTIPROC_DIR] = directory  # read by each worker's prometheus_client when imported
    server = None
    try:
        if settings.metrics_listen is not None:
            host, port = settings.metrics_listen
            try:
                server = AddressServer(host, port, lambda: scrape_directory(directory))
            except OSError as exc:
                raise fail(f"cannot listen on {settings.metrics_address}: {exc.strerror or exc}") from None
        yield lambda pid: forget_process(pid, directory)
    finally:
        if server is not None:
            server.close()
        os.environ.pop(MULTIPROC_DIR, None)
        shutil.rmtree(directory, ignore_errors=True)


@app.command("migrate")
def migrate_command() -> None:
    """Bring the database schema up to date."""
    _migrate(load_settings())
    typer.echo("database schema is up to date")


def _require_current_schema(settings: Settings) -> None:
    """Stop with one line unless the schema is up to date, rather than each worker with a traceback."""
    from doorward.storage.migrate import current_revision, newest_revision

    try:
        current = current_revision(settings.database_url, settings.db_timeout, pooler=settings.db_pooler)
    except Exception as exc:
        raise fail(f"cannot read the database schema's revision: {_first_line(exc)}") from None
    newest = newest_revision()
    if current != newest:
        at = "no revision" if current is None else f"at {current}"
        raise fail(
            f"the database schema is not up to date ({at}; the newest is {newest}): "
            "run doorward migrate, or serve without --no-migrate"
        )


def _first_line(exc: BaseException) -> str:
    """``Type: the first line of its message``, of a driver's error too (its ``orig``)."""
    from doorward.storage.errors import POOLER_HINT, pooler_trouble  # here: it loads the drivers

    lines = str(getattr(exc, "orig", None) or exc).splitlines()
    first = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return f"{first} ({POOLER_HINT})" if pooler_trouble(exc) else first


def _migrate(settings: Settings) -> None:
    from doorward.storage import upgrade

    try:
        upgrade(settings.database_url, pooler=settings.db_pooler)
    except Exception as exc:
        raise fail(f"migration failed: {_first_line(exc)}") from None
