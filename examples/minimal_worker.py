"""CueAPI's "Minimal worker example (Python)", pointed at cueflow.

The loop below is the example from CueAPI's worker documentation, line for line, with one
change: it calls ``httpx`` (which cueflow installs) where the original calls ``requests`` (which
it does not); the calls are the same (``get``/``post`` with ``headers=`` and ``json=``,
``status_code``, ``json()``). The two settings it leaves to the reader are filled in:
``API``/``TOKEN`` come from the environment (``CUEFLOW_URL``, ``CUEFLOW_API_KEY``) and
``do_work`` is defined (typed: ``mypy --strict`` passes over the examples). Run it against
``cueflow serve``::

    CUEFLOW_API_KEY=cue_sk_... python examples/minimal_worker.py
"""

import os
import time
from typing import Any

import httpx


def do_work(payload: dict[str, Any]) -> str:
    """The job: here, echo the payload's task."""
    return f"done: {payload.get('task', payload)}"


API = os.environ.get("CUEFLOW_URL", "http://localhost:8000")
TOKEN = os.environ.get("CUEFLOW_API_KEY", "cue_sk_...")
HEADERS = {"Authorization": f"Bearer {TOKEN}"}

while True:
    # Poll
    resp = httpx.get(f"{API}/v1/executions/claimable", headers=HEADERS)
    executions = resp.json().get("executions", [])

    for execution in executions:
        exec_id = execution["execution_id"]

        # Claim
        claim = httpx.post(
            f"{API}/v1/executions/{exec_id}/claim",
            headers={**HEADERS, "Content-Type": "application/json"},
            json={"worker_id": "my-worker-001"},
        )
        if claim.status_code != 200:
            continue

        # Process
        try:
            result = do_work(execution["payload"])
            httpx.post(
                f"{API}/v1/executions/{exec_id}/outcome",
                headers={**HEADERS, "Content-Type": "application/json"},
                json={"success": True, "result": str(result)},
            )
        except Exception as e:
            httpx.post(
                f"{API}/v1/executions/{exec_id}/outcome",
                headers={**HEADERS, "Content-Type": "application/json"},
                json={"success": False, "error": str(e)},
            )

    time.sleep(2)
