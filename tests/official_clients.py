"""CueAPI's three official PyPI clients, installed the way they can coexist.

``cueapi-sdk`` and the ``cueapi`` CLI both install a top-level package named ``cueapi``, so the
CLI and the worker daemon get their own virtual environment and the SDK a ``pip --target``
directory that is put on ``sys.path`` only while it is imported. Versions are pinned; both live
under ``build/official-clients`` and are reused across runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import importlib
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

SDK = "cueapi-sdk==0.1.3"
WORKER = "cueapi-worker==0.3.0"
CLI = "cueapi==0.2.0"
ROOT = Path(__file__).resolve().parents[1] / "build" / "official-clients"


def _pip(python: str, *args: str) -> None:
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        pytest.fail(f"installing {args[-1]} failed:\n{result.stderr[-2000:]}")


@contextlib.contextmanager
def _installing() -> Iterator[None]:
    """Held while installing, so parallel test processes (pytest-xdist) install once."""
    ROOT.mkdir(parents=True, exist_ok=True)
    with open(ROOT / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@functools.cache
def sdk_dir() -> Path:
    """A directory holding only the ``cueapi`` package of ``cueapi-sdk``."""
    target = ROOT / "sdk"
    marker = target / f".{SDK}"
    with _installing():
        if not marker.exists():
            _pip(sys.executable, "--no-deps", "--upgrade", "--target", str(target), SDK)
            marker.touch()
    return target


@functools.cache
def clients_bin() -> Path:
    """The ``bin`` directory of a venv with ``cueapi-worker`` and the ``cueapi`` CLI."""
    env = ROOT / "venv"
    marker = env / f".{WORKER}.{CLI}"
    with _installing():
        if not marker.exists():
            venv.create(env, with_pip=True, clear=True)
            _pip(str(env / "bin" / "python"), WORKER, CLI)
            marker.touch()
    return env / "bin"


@functools.cache
def sdk() -> ModuleType:
    """The SDK's ``cueapi`` module, imported from :func:`sdk_dir` without leaving it on the
    path (so nothing else named ``cueapi`` is shadowed)."""

    def ours(name: str) -> bool:
        return name == "cueapi" or name.startswith("cueapi.")

    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(sdk_dir()))
    try:
        module = importlib.import_module("cueapi")
        for sub in ("client", "exceptions", "models", "resources", "webhook"):
            importlib.import_module(f"cueapi.{sub}")  # bind every submodule while on the path
    finally:
        sys.path.remove(str(sdk_dir()))
    return module


CLIENT_SERVER_ENV = {
    "CUEFLOW_ALLOW_PRIVATE_WEBHOOKS": "true",
    "CUEFLOW_RATE_LIMIT_PER_MINUTE": "300",
    "CUEFLOW_ACTIVE_CUE_LIMIT": "25",
}
"""The server the clients talk to: local webhooks allowed, a rate limit low enough to reach
in a test, and a cue limit so the SDK's 403 error can be provoked."""
