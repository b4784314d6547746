"""cueflow embedded in a script: a Python handler runs every 2 seconds until Ctrl-C.

Run it with ``python examples/embedded_app.py``, and again: the schedule declared in code is
stored once (created, updated when the declaration changes, else left alone). The store is
``embedded.db`` in the current directory (``EXAMPLE_DATABASE_URL`` names another);
``EXAMPLE_RUNS=3`` stops it after three greetings.
"""

import itertools
import os
import signal
from typing import Any

import cueflow

engine = cueflow.open_engine(os.environ.get("EXAMPLE_DATABASE_URL", "sqlite:///embedded.db"))
greetings = itertools.count(1)


@engine.every("2s", owner="me@example.com", name="greeting", payload={"name": "world"})
def greet(payload: dict[str, Any]) -> str:
    print(f"Hello, {payload['name']}!", flush=True)
    if next(greetings) == int(os.environ.get("EXAMPLE_RUNS", "0")):
        os.kill(os.getpid(), signal.SIGTERM)  # stop, as Ctrl-C does
    return "greeted"


if __name__ == "__main__":
    engine.run()  # stores the declared schedule, runs until Ctrl-C or SIGTERM
