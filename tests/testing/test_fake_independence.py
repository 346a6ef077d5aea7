"""clust.testing is an independent witness: stdlib + clust's own dependencies, nothing of clust."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import clust.testing

ALLOWED_THIRD_PARTY = {"httpx", "pydantic", "anyio"}


def test_imports_only_stdlib_and_allowed_packages() -> None:
    package = Path(clust.testing.__file__).parent
    offenders: list[str] = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level > 0:
                    continue  # relative: inside clust.testing
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "__future__":
                    continue
                if top not in ALLOWED_THIRD_PARTY:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_public_names() -> None:
    for name in clust.testing.__all__:
        assert hasattr(clust.testing, name), name
    assert {"FakeClaude", "Reply", "RecordedRequest", "ModelInfo"} <= set(clust.testing.__all__)
