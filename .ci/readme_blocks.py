"""Run every ```bash block of README.md as written, in a fresh copy of the checkout.

``python3 .ci/readme_blocks.py [--port N] [--work DIR]``: copies the checkout's files (git's
list) to DIR, then runs the README's shell blocks there in order, each in its own ``bash`` with a
bounded time, starting from no venv: the quick start's block makes it with the README's own
install command. Lines that start a long-running process (``cueflow serve``, ``cueflow worker``,
``cueflow mcp``, the minimal worker) run in the background: after the server's block the runner
waits for ``/health`` and registers an account whose key it exports to the later blocks as
``KEY`` and ``CUEFLOW_API_KEY`` (as the README's own block does for a reader); each worker must
still be running a few seconds after its block. A block whose output holds the contract's error
envelope fails even when its commands exit 0 (as ``curl -s`` does on a 4xx). Everything started
is stopped at the end.

A block preceded by ``<!-- not-run: reason -->`` is skipped; the runner lists those with their
reasons. ``--port`` moves the server off 8000 (the README's) where 8000 is taken, as on a shared
development machine: ``localhost:8000`` and ``127.0.0.1:8000`` in the blocks become that port.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(.*?)\s*-->\s*$")
ERROR_ENVELOPE = re.compile(r'\{"error":\s*\{"code"')
"""A curl in a block answered with the contract's error envelope (curl -s still exits 0)."""
LONG_RUNNING = re.compile(r"cueflow (serve|worker|mcp)\b|minimal_worker\.py")
INSTALL_SECONDS = 900
"""A block that installs (pip) may take this long; any other block gets BLOCK_SECONDS."""
BLOCK_SECONDS = 180
SERVER_START_SECONDS = 900
WORKER_ALIVE_SECONDS = 5
STOP_SECONDS = 30


@dataclass
class Block:
    """One ```bash block: its text, line in README.md and the reason it is not run, if any."""

    text: str
    line: int
    not_run: str | None


def blocks(readme: str) -> list[Block]:
    """The README's ```bash blocks, in order."""
    found = []
    for match in BLOCK.finditer(readme):
        before = readme[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        reason = NOT_RUN.search(before)
        line = readme.count("\n", 0, match.start()) + 1
        found.append(Block(match.group(1), line, reason.group(1) if reason else None))
    return found


def copy_checkout(work: Path) -> None:
    """The checkout's files (tracked and untracked, not ignored) into ``work``."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, names):
        source = ROOT / name
        if source.is_file():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, work / name)


def script_of(block: Block, port: int, pids: Path) -> str:
    """The block as a bash script: long-running lines go to the background, their pids to
    ``pids``; the port moved if asked."""
    lines = []
    text = block.text.replace("\\\n", "\x00")  # keep continued lines together
    for line in text.split("\n"):
        line = line.replace("\x00", "\\\n")
        if port != 8000:
            line = re.sub(r"(localhost|127\.0\.0\.1):8000\b", rf"\1:{port}", line)
        code = line.split(" #", 1)[0].strip()
        if code and not code.startswith("#") and LONG_RUNNING.search(code):
            n = len(pids.read_text().splitlines()) if pids.exists() else 0
            lines.append(f"{{ {code} ; }} > background-{block.line}-{n}.log 2>&1 &")
            lines.append(f'echo "$! {block.line}" >> {pids}')
        else:
            lines.append(line)
    return "set -euo pipefail\n" + "\n".join(lines) + "\n"


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie nobody reaped does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def background(pids: Path, line: int | None = None) -> list[int]:
    """The pids started in the background (by the block at ``line``, or by any)."""
    if not pids.exists():
        return []
    rows = [row.split() for row in pids.read_text().splitlines() if row.strip()]
    return [int(pid) for pid, at in rows if line is None or int(at) == line]


def stop(pids: list[int], groups: list[int]) -> None:
    """SIGTERM what the blocks started (the server drains), SIGKILL what is left after
    STOP_SECONDS."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


def wait_for_server(base: str, pids: list[int], deadline: float) -> None:
    """Until ``base``/health answers; fail if the server's process ended first."""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if not any(alive(pid) for pid in pids):
            raise RuntimeError("cueflow serve ended before it answered /health")
        time.sleep(0.5)
    raise RuntimeError("cueflow serve did not answer /health in time")


def register(base: str) -> str:
    """A new account's API key."""
    request = urllib.request.Request(
        f"{base}/v1/auth/register",
        data=json.dumps({"email": "readme-blocks@example.com"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.load(answer)["api_key"])


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a file, if it exists."""
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run(work: Path, port: int) -> int:
    """Run the blocks in ``work``; answer the exit code."""
    readme = (work / "README.md").read_text(encoding="utf-8")
    pids = work / "background.pids"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "DATABASE_URL")}
    base = f"http://127.0.0.1:{port}"
    if port != 8000:
        env.update(PORT=str(port), CUEFLOW_API_URL=base, CUEFLOW_URL=base)
    skipped, failed, ran = [], [], 0
    groups: list[int] = []
    try:
        for block in blocks(readme):
            if block.not_run:
                skipped.append(f"README.md:{block.line}: {block.not_run}")
                continue
            ran += 1
            started = time.monotonic()
            seconds = INSTALL_SECONDS if "pip install" in block.text else BLOCK_SECONDS
            shell = subprocess.Popen(
                ["bash", "-c", script_of(block, port, pids)],
                cwd=work, env=env, start_new_session=True,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            groups.append(shell.pid)
            try:
                output, _ = shell.communicate(timeout=seconds)
                problem = None if shell.returncode == 0 else f"exited {shell.returncode}"
                if problem is None and ERROR_ENVELOPE.search(output or ""):
                    problem = "a request was refused (the answer is an error envelope)"
            except subprocess.TimeoutExpired:
                os.killpg(shell.pid, signal.SIGKILL)
                output, _ = shell.communicate()
                problem = f"took longer than {seconds} s"
            mine = background(pids, block.line)
            if problem is None and LONG_RUNNING.search(block.text) and "serve" in block.text:
                try:
                    wait_for_server(base, mine, started + SERVER_START_SECONDS)
                    key = register(base)
                    env.update(KEY=key, CUEFLOW_API_KEY=key)
                except (RuntimeError, OSError) as exc:
                    problem = str(exc)
            elif problem is None and mine:
                time.sleep(WORKER_ALIVE_SECONDS)
                if not all(alive(pid) for pid in mine):
                    problem = "a process it started in the background ended"
            took = time.monotonic() - started
            print(f"README.md:{block.line}: {'ok' if problem is None else 'FAILED'} ({took:.0f} s)")
            if problem is not None:
                logs = "\n".join(tail(p) for p in sorted(work.glob(f"background-{block.line}-*")))
                failed.append(
                    f"README.md:{block.line}: {problem}\n--- block:\n{block.text}"
                    f"--- output:\n{(output or '')[-4000:]}\n--- background:\n{logs}"
                )
    finally:
        stop(background(pids), groups)
    for reason in skipped:
        print(f"README.md skipped {reason}")
    for failure in failed:
        print(failure, file=sys.stderr)
    print(f"README blocks: {ran} run, {len(failed)} failing, {len(skipped)} skipped")
    return 1 if failed else 0


def main() -> int:
    """Copy the checkout, run the README's blocks, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="cueflow-readme-"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    copy_checkout(work)
    print(f"README blocks in {work}")
    return run(work, args.port)


if __name__ == "__main__":
    sys.exit(main())
