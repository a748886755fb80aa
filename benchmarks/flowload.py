"""A load generator for the flows wrk's Lua cannot drive: a login's second step (``mfa``: a TOTP code
for an mfaToken the loader wrote) and a passkey sign-in (``passkey``: options, then an assertion
signed by tests/authenticator.py's software authenticator).

asyncio on uvloop, one raw HTTP/1.1 keep-alive connection per client, no HTTP library: its CPU is
counted beside the server's, as wrk's is, and kept small. It prints one ``BENCH_JSON {...}`` line in
the shape lua/common.lua prints, so wrk.py reads both. A passkey sign-in (two requests) counts as one.

    python benchmarks/flowload.py --url http://127.0.0.1:8000 --flow mfa --data run.json -c 16 -d 6
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import json
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import wrk

from doorward.core import totp

TESTS = Path(__file__).resolve().parent.parent / "tests"


def software_authenticator(rp_id: str, origin: str) -> Any:
    """A new passkey of tests/authenticator.py's ``SoftwareAuthenticator``: synced, counting nothing."""
    spec = importlib.util.spec_from_file_location("bench_authenticator", TESTS / "authenticator.py")
    if spec is None or spec.loader is None:
        raise RuntimeError(f"no software authenticator at {TESTS / 'authenticator.py'}")
    if "bench_authenticator" not in sys.modules:
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_authenticator"] = module
        spec.loader.exec_module(module)
    cls = sys.modules["bench_authenticator"].SoftwareAuthenticator
    return cls(rp_id, origin, counts=False, synced=True)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def authenticator_json(auth: Any) -> dict[str, str]:
    """What ``authenticator_from`` needs to rebuild ``auth`` in the generator's process."""
    from cryptography.hazmat.primitives import serialization

    der = auth.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "credential_id": _b64(auth.credential_id),
        "user_handle": _b64(auth.user_handle),
        "key": _b64(der),
    }


def authenticator_from(data: dict[str, str], rp_id: str, origin: str) -> Any:
    from cryptography.hazmat.primitives import serialization

    auth = software_authenticator(rp_id, origin)
    auth.key = serialization.load_der_private_key(_unb64(data["key"]), password=None)
    auth.credential_id = _unb64(data["credential_id"])
    auth.user_handle = _unb64(data["user_handle"])
    return auth


class Connection:
    """One keep-alive HTTP/1.1 connection, reopened after the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, path: str, body: bytes, client: str) -> tuple[int, bytes]:
        """POST ``body`` (JSON) to ``path`` as ``client`` (X-Forwarded-For); (status, body)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Forwarded-For: {client}\r\n\r\n"
        )
        self.writer.write(head.encode("ascii") + body)
        line = await self.reader.readline()
        if not line:
            raise ConnectionResetError("closed by the server")
        status = int(line.split()[1])
        length, chunked, close = None, False, False
        while (header := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = header.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                close = b"close" in value
        if chunked:
            parts = []
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                parts.append(await self.reader.readexactly(size + 2))
            await self.reader.readline()
            data = b"".join(part[:-2] for part in parts)
        elif length is not None:
            data = await self.reader.readexactly(length)
        else:
            data, close = await self.reader.read(), True
        if close:
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Load:
    """The run's shared state: what each client takes next, and what came back."""

    def __init__(self, data: dict[str, Any], deadline: float, state: Path | None) -> None:
        self.data = data
        self.deadline = deadline
        self.state = state
        self.statuses: dict[str, int] = {}
        self.errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
        self.latencies: list[float] = []
        self.next = 0
        self.exhausted = False
        self.skipped = 0
        secrets_ = data.get("totp_secrets", [])
        self.secrets: list[str] = secrets_
        # The last step each app account used, kept between runs: a code works once.
        self.last_step = [0] * len(secrets_)
        if state is not None and state.exists():
            self.last_step = json.loads(state.read_text(encoding="ascii"))
        self.authenticators = [
            authenticator_from(p, data["rp_id"], data["origin"]) for p in data.get("passkeys", [])
        ]

    def client(self) -> str:
        c = random.randrange(self.data.get("clients", 1_000_000))
        return f"10.{c // 65536 % 256}.{c // 256 % 256}.{c % 256}"

    def done(self, status: int | str, began: float) -> None:
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
        self.latencies.append((time.perf_counter() - began) * 1e6)

    def mfa_body(self) -> bytes | None:
        """The next mfaToken with a code its account has not used yet; None when none is left."""
        tokens = self.data["tokens"]
        now = totp.step_at(datetime.now(UTC))
        while self.next < len(tokens):
            token, account = tokens[self.next]
            self.next += 1
            step = max(now, self.last_step[account] + 1)
            if step <= now + 1:  # the server takes the step before and after now's too
                self.last_step[account] = step
                code = totp.code_at(self.secrets[account], step)
                return json.dumps({"mfaToken": token, "code": code}).encode()
            self.skipped += 1  # this account used both of its codes of now: the next token
        self.exhausted = True
        return None


async def mfa_client(load: Load, conn: Connection) -> None:
    while time.monotonic() < load.deadline and (body := load.mfa_body()) is not None:
        began = time.perf_counter()
        status, _ = await conn.request("/login/mfa", body, load.client())
        load.done(status, began)


async def passkey_client(load: Load, conn: Connection) -> None:
    while time.monotonic() < load.deadline:
        auth = load.authenticators[load.next % len(load.authenticators)]
        load.next += 1
        client, began = load.client(), time.perf_counter()
        status, body = await conn.request("/login/passkey/options", b"", client)
        if status != 200:
            load.done(f"options {status}", began)
            continue
        credential = auth.get(json.loads(body)["options"])
        status, _ = await conn.request(
            "/login/passkey", json.dumps({"credential": credential}).encode(), client
        )
        load.done(status, began)


async def client_loop(load: Load, flow: str, host: str, port: int) -> None:
    conn = Connection(host, port)
    run = mfa_client if flow == "mfa" else passkey_client
    while time.monotonic() < load.deadline and not load.exhausted:
        try:
            await run(load, conn)
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
            load.errors["connect" if conn.writer is None else "read"] += 1
            conn.close()
            if isinstance(exc, ConnectionRefusedError):
                await asyncio.sleep(0.01)
    conn.close()


def run(
    url: str, flow: str, data: Path, *, connections: int, duration: float, state: Path | None = None
) -> wrk.WrkResult:
    """This generator in a process of its own (the runner's child, counted as wrk is), its figures."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--url", url, "--flow", flow, "--data", str(data)]
    argv += ["-c", str(connections), "-d", f"{duration:g}"] + (["--state", str(state)] if state else [])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120, check=False)
    return wrk.parse(done, connections)


async def generate(load: Load, flow: str, url: str, connections: int) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    await asyncio.gather(*(client_loop(load, flow, host, port) for _ in range(connections)))


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run the load; its figures, in lua/common.lua's shape."""
    try:
        from uvloop import run as run_loop
    except ImportError:
        run_loop = asyncio.run  # type: ignore[assignment]
    data = json.loads(Path(args.data).read_text(encoding="utf-8"))
    started = time.monotonic()
    load = Load(data, started + args.duration, Path(args.state) if args.state else None)
    run_loop(generate(load, args.flow, args.url, args.connections))
    elapsed = time.monotonic() - started
    if load.state is not None and load.secrets:
        load.state.write_text(json.dumps(load.last_step), encoding="ascii")
    lat = sorted(load.latencies) or [0.0]

    def pct(q: float) -> int:
        return round(lat[min(len(lat) - 1, int(q / 100 * len(lat)))])

    return {
        "duration_us": round(elapsed * 1e6),
        "requests": len(load.latencies),
        "bytes": 0,
        "errors": load.errors,
        "latency_us": {
            "min": round(lat[0]),
            "mean": sum(lat) / len(lat),
            "max": round(lat[-1]),
            "p50": pct(50),
            "p90": pct(90),
            "p99": pct(99),
            "p999": pct(99.9),
        },
        "statuses": load.statuses,
        "exhausted": load.exhausted,
        "skipped_tokens": load.skipped,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True)
    parser.add_argument("--flow", choices=("mfa", "passkey"), required=True)
    parser.add_argument("--data", required=True, help="the JSON the runner wrote (figures_flows.py)")
    parser.add_argument("--state", help="a file keeping each app account's last step between runs")
    parser.add_argument("-c", "--connections", type=int, default=16)
    parser.add_argument("-d", "--duration", type=float, default=6.0)
    print("BENCH_JSON " + json.dumps(main(parser.parse_args())), flush=True)
