"""The JSON response every endpoint answers with: charset declared, never cached."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
"""Built once: ``json.dumps`` with these options builds an encoder per call (benchmarks/README.md)."""


class Envelope(JSONResponse):
    """JSON with ``charset=utf-8`` and ``Cache-Control: no-store``.

    no-store goes on every API answer, not only those carrying a token or a user: the errors then
    carry the very same headers as the successes they could be told apart from.
    """

    media_type = "application/json; charset=utf-8"

    def __init__(self, content: Any, status_code: int = 200, headers: dict[str, str] | None = None):
        super().__init__(content, status_code, {"Cache-Control": "no-store", **(headers or {})})

    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content).encode()
