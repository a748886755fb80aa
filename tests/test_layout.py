"""Every top-level module and package of doorward has its place in the import-linter layers contract.

lint-imports checks only the modules a contract names: one left out is silently unchecked.
"""

from __future__ import annotations

import pkgutil
import re
import tomllib
from pathlib import Path
from typing import Any

import doorward

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def top_level_modules() -> set[str]:
    """``doorward.x`` for each module and package directly under src/doorward/."""
    return {f"doorward.{module.name}" for module in pkgutil.iter_modules(doorward.__path__)}


def named_in_layers(config: dict[str, Any]) -> set[str]:
    """Every module a layers contract names, siblings (``a | b``, ``a : b``) and optional ``(a)`` included."""
    named: set[str] = set()
    for contract in config["tool"]["importlinter"]["contracts"]:
        if contract["type"] != "layers":
            continue
        containers = contract.get("containers", [""])
        for layer in contract["layers"]:
            for name in re.split(r"[|:]", layer):
                module = name.strip().strip("()").strip()
                named.update(f"{container}.{module}" if container else module for container in containers)
    return named


def test_every_spelling_of_a_layer_is_read() -> None:
    config = tomllib.loads(
        """
        [[tool.importlinter.contracts]]
        type = "forbidden"
        source_modules = ["doorward.forbidden"]
        [[tool.importlinter.contracts]]
        type = "layers"
        layers = ["doorward.cli", "doorward.serve | doorward.web", "doorward.a : doorward.b", "(doorward.c)"]
        [[tool.importlinter.contracts]]
        type = "layers"
        containers = ["doorward"]
        layers = ["wiring", "storage | mail"]
        """
    )
    assert named_in_layers(config) == {
        "doorward.cli",
        "doorward.serve",
        "doorward.web",
        "doorward.a",
        "doorward.b",
        "doorward.c",
        "doorward.wiring",
        "doorward.storage",
        "doorward.mail",
    }


def test_every_top_level_module_is_in_the_layers_contract() -> None:
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    missing = top_level_modules() - named_in_layers(config)
    assert not missing, f"not in any layer of pyproject.toml's layers contract: {sorted(missing)}"
