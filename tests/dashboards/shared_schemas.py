"""The public schemas in ../shared/schemas, read at run time (never copied here)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

SHARED = REPO.parent / "shared" / "schemas"


def schema_dir(kind: str) -> Path:
    path = SHARED / kind
    if not path.is_dir():
        pytest.skip(f"{path} is absent: the shared schemas live beside the repository")
    return path


@cache
def load(kind: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((schema_dir(kind) / name).read_text(encoding="utf-8"))
    return data


def definition(kind: str, name: str, definition_name: str) -> dict[str, Any]:
    """A schema that validates against one definition of a schema file."""
    document = load(kind, name)
    return {
        "$schema": document.get("$schema", "http://json-schema.org/draft-07/schema#"),
        "$ref": f"#/definitions/{definition_name}",
        "definitions": document["definitions"],
    }
