"""The migrations ship in the wheel: ``clust db upgrade`` and ``Store(url)`` work from an
installed copy, with the source checkout out of reach.

The wheel is built with pip (hatchling comes from the configured package index, as in
any build); the test skips, saying why, when it cannot be built here. It is installed
with ``pip install --no-deps --no-compile --target DIR`` and run with
``PYTHONPATH=DIR`` from an empty working directory; the dependencies (SQLAlchemy,
Alembic, ...) come from the running environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clust.store.migrate import HEAD_REVISION

ROOT = Path(__file__).resolve().parents[2]  # the checkout: pyproject.toml, clust/


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory holding clust installed from a freshly built wheel."""
    assert (ROOT / "pyproject.toml").is_file()
    wheels = tmp_path_factory.mktemp("wheels")
    # Short network timeouts: without a reachable index the build fails fast and skips.
    env = dict(os.environ, PIP_DEFAULT_TIMEOUT="10", PIP_RETRIES="1")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels)]
    try:
        build = subprocess.run(
            [*command, str(ROOT)], capture_output=True, text=True, env=env, timeout=90
        )
    except subprocess.TimeoutExpired:
        pytest.skip("building the clust wheel took over 90 s (package index unreachable?)")
    built = sorted(wheels.glob("clust-*.whl"))
    if build.returncode != 0 or not built:
        pytest.skip(
            "cannot build the clust wheel here (pip wheel needs hatchling from the "
            f"package index): {build.stderr.strip()[-500:]}"
        )
    target = tmp_path_factory.mktemp("site")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-compile",
            "--no-index",
            "--quiet",
            "--target",
            str(target),
            str(built[-1]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert install.returncode == 0, install.stderr
    yield target


def run_installed(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"CLUST_DATABASE_URL", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE"}
    }
    env["PYTHONPATH"] = str(installed)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )


def test_wheel_carries_the_migrations(installed: Path) -> None:
    migrations = installed / "clust" / "store" / "migrations"
    assert (migrations / "env.py").is_file()
    assert (migrations / "script.py.mako").is_file()
    assert [p.name for p in (migrations / "versions").glob(f"{HEAD_REVISION}_*.py")]


def test_db_upgrade_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    migrations = installed / "clust" / "store" / "migrations"
    for cache in (migrations / "__pycache__", migrations / "versions" / "__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)  # left by another test of this module
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    upgraded = run_installed(installed, tmp_path, "-m", "clust", "db", "upgrade", "--url", url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert HEAD_REVISION in upgraded.stdout
    # Alembic loaded env.py and the revision from the installed copy (installed
    # without bytecode, so a .pyc there means it was run from there).
    assert list((migrations / "__pycache__").glob("env.*.pyc"))
    assert list((migrations / "versions" / "__pycache__").glob(f"{HEAD_REVISION}_*.pyc"))

    current = run_installed(installed, tmp_path, "-m", "clust", "db", "current", "--url", url)
    assert current.returncode == 0, current.stderr
    assert current.stdout.strip() == f"{HEAD_REVISION} (current)"


_OPEN_STORE = """
import json, sys

opened = []
sys.addaudithook(
    lambda event, args: opened.append(str(args[0]))
    if event == "open" and "migrations" in str(args[0])
    else None
)
import clust
from clust import Store
from clust.store.migrate import MIGRATIONS

with Store(sys.argv[1]) as store:
    conversation = store.create_conversation(model="claude-sonnet-5-5", max_tokens=8)
    assert store.get_conversation(conversation.id).id == conversation.id
print(json.dumps({"clust": clust.__file__, "migrations": str(MIGRATIONS), "opened": opened}))
"""


def test_store_upgrades_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    result = run_installed(installed, tmp_path, "-c", _OPEN_STORE, url)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert Path(seen["clust"]).is_relative_to(installed), seen["clust"]
    assert Path(seen["migrations"]).is_relative_to(installed)
    # env.py and the revision were read (as source or cached bytecode) from the install.
    names = [Path(path).name for path in seen["opened"]]
    assert any(name.startswith("env.") for name in names), seen["opened"]
    assert any(name.startswith(f"{HEAD_REVISION}_") for name in names), seen["opened"]
    for path in seen["opened"]:
        assert Path(path).is_relative_to(installed), path
        assert not Path(path).is_relative_to(ROOT), path
