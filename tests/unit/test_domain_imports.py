"""The domain core imports the standard library and itself only (ARCHITECTURE: layers)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import learnlog.domain

pytestmark = pytest.mark.unit

DOMAIN_DIR = Path(learnlog.domain.__file__).parent
FORBIDDEN_LAYERS = ("service", "store", "api", "analytics", "sync", "jobs", "cli",
                    "bootstrap", "settings")


def forbidden_imports(source: str, max_level: int = 1) -> list[str]:
    """Every import in `source` that leaves the standard library or the domain package.

    Dynamic imports (importlib, __import__) are refused too: they would dodge the check.
    """
    bad: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.partition(".")[0]
                if top not in sys.stdlib_module_names or top == "importlib":
                    bad.append(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                top = (node.module or "").partition(".")[0]
                if top not in sys.stdlib_module_names or top == "importlib":
                    bad.append(node.module or "")
            elif node.level > max_level:
                # `.x` stays inside learnlog.domain; `..x` from a top-level domain module
                # reaches learnlog.service, store … (a subpackage file may go one up per level).
                bad.append("." * node.level + (node.module or ""))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id == "__import__"):
            bad.append("__import__(...)")
    return bad


def domain_files() -> list[Path]:
    return sorted(DOMAIN_DIR.glob("**/*.py"))


def test_domain_has_the_expected_modules() -> None:
    names = {p.stem for p in domain_files()}
    assert {"keys", "progress", "summary", "assessment", "collection", "certificates",
            "errors"} <= names


@pytest.mark.parametrize("path", domain_files(), ids=lambda p: p.name)
def test_domain_module_imports_only_stdlib_and_domain(path: Path) -> None:
    depth = len(path.relative_to(DOMAIN_DIR).parts)  # 1 for domain/x.py, 2 for domain/p/x.py
    assert forbidden_imports(path.read_text(encoding="utf-8"), max_level=depth) == []


@pytest.mark.parametrize(
    "source",
    [
        "import pydantic",
        "import sqlalchemy.engine",
        "from fastapi import FastAPI",
        "from learnlog.service import views",
        "from learnlog import store",
        "from ..service import x",
        "from .. import api",
        "from ...x import y",
        "def f():\n    import redis\n",
        "x = __import__('sqlalchemy')",
        "import importlib",
        "from importlib import import_module",
    ],
)
def test_the_import_check_catches_forbidden_imports(source: str) -> None:
    assert forbidden_imports(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "import math",
        "import collections.abc",
        "from __future__ import annotations",
        "from dataclasses import dataclass",
        "from .keys import SummaryKey",
        "from . import keys",
    ],
)
def test_the_import_check_allows_stdlib_and_relative(source: str) -> None:
    assert forbidden_imports(source) == []


def test_domain_names_no_other_layer() -> None:
    for path in domain_files():
        text = path.read_text(encoding="utf-8")
        for layer in FORBIDDEN_LAYERS:
            assert f"learnlog.{layer}" not in text, (path.name, layer)
