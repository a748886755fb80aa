"""Audit events: one structured log record per authentication attempt, session change and admin action.

Fields are plain values; passwords and raw tokens are never passed here. The log formatter escapes
control characters, so a crafted email cannot forge log lines.
"""

from __future__ import annotations

import logging

_log = logging.getLogger("doorward.audit")


def audit(event: str, **fields: object) -> None:
    """Record ``event`` (e.g. ``login.failed``) with its fields."""
    _log.info(event, extra={"audit": fields})
