"""The import file's format, read in one place for ``doorward users import`` and ``POST /admin/users/import``:
CSV whose header names ``email`` and ``password_hash`` (other columns are ignored)."""

from __future__ import annotations

import csv
import io

from doorward.core.admin import ImportRow
from doorward.core.errors import InvalidRequest

REQUIRED_COLUMNS = frozenset({"email", "password_hash"})


def read_import_csv(text: str) -> list[ImportRow]:
    """The rows of an import file's text (a byte-order mark already removed), each with its line
    number; InvalidRequest when the header lacks a column or the CSV is malformed."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        if reader.fieldnames is None or REQUIRED_COLUMNS - set(reader.fieldnames):
            raise InvalidRequest("the CSV header must be: email,password_hash")
        return [ImportRow(reader.line_num, row["email"] or "", row["password_hash"] or "") for row in reader]
    except csv.Error as exc:
        raise InvalidRequest(f"malformed CSV: {exc}") from None
