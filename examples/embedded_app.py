"""cueflow embedded in a script: a Python handler runs every 2 seconds until Ctrl-C.

Run it with ``python examples/embedded_app.py``.
"""

import cueflow

engine = cueflow.open_engine("sqlite://")  # in memory; or "sqlite:///app.db", "postgresql://..."


@engine.handler("greet")
def greet(payload: dict) -> str:
    print(f"Hello, {payload['name']}!", flush=True)
    return "greeted"


async def create_cues() -> None:
    me = await engine.account("me@example.com")
    await engine.create_cue(me, {
        "name": "greeting", "transport": "inprocess", "payload": {"task": "greet", "name": "world"},
        "schedule": {"type": "interval", "interval_seconds": 2},
    })  # fmt: skip


if __name__ == "__main__":
    engine.run(create_cues)  # starts the engine, creates the cue, runs until Ctrl-C or SIGTERM
