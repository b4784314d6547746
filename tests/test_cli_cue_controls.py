"""The run controls from the command line (``docs/run-controls.md``): ``cueflow cues create``
and ``cueflow cues update`` with ``--overlap-policy``, ``--priority``, ``--concurrency
N[:KEY]``, ``--rate-limit N/PERIOD[:KEY]``, ``--required-payload-key`` and the ``--no-...``
flags that remove a limit, against a real ``cueflow serve``; ``cues show`` and ``cues list``
print the controls (and ``--json`` carries them). Bad options are usage errors (exit 2), what
the server refuses exits 1 with its message."""

from __future__ import annotations

from tests.test_cli_commands import (  # noqa: F401  (fixtures)
    Account,
    account,
    any_server,
    fails,
    pg_server,
    sqlite_server,
)


def test_create_with_controls_then_show_and_list_them_on_each_store(
    any_server: str,  # noqa: F811
) -> None:
    acc = Account(any_server)
    made = acc.json(
        "cues", "create", "--name", "summarise", "--every", "5m", "--task", "llm",
        "--payload", '{"doc": 1, "lang": "en"}',
        "--overlap-policy", "buffer_one", "--priority", "7",
        "--concurrency", "2:llm", "--rate-limit", "60/1m:llm",
        "--required-payload-key", "doc", "--required-payload-key", "lang",
    )  # fmt: skip
    cue = acc.http.get(f"/v1/cues/{made['id']}").json()
    assert cue["overlap_policy"] == "buffer_one"
    assert cue["priority"] == 7
    assert cue["concurrency"] == {"limit": 2, "key": "llm"}
    assert cue["rate_limit"] == {"limit": 60, "period_seconds": 60, "key": "llm"}
    assert cue["required_payload_keys"] == ["doc", "lang"]
    assert made["concurrency"] == cue["concurrency"]  # --json prints the server's answer

    shown = acc("cues", "show", cue["id"])
    assert shown.exit_code == 0, shown.output
    lines = [" ".join(line.split()) for line in shown.stdout.splitlines()]
    for line in (
        "overlap policy buffer_one",
        "priority 7",
        "concurrency 2 at once (key llm)",
        "rate limit 60 per 60s (key llm)",
        "required keys doc, lang",
    ):
        assert line in lines, shown.stdout
    as_json = acc.json("cues", "show", cue["id"])
    assert as_json["rate_limit"] == cue["rate_limit"]
    assert as_json["required_payload_keys"] == ["doc", "lang"]

    plain = acc.json(
        "cues", "create", "--name", "plain", "--every", "5m", "--task", "report"
    )  # fmt: skip
    listed = acc("cues", "list")
    assert listed.exit_code == 0, listed.output
    assert "CONTROLS" in listed.stdout
    [row] = [line for line in listed.stdout.splitlines() if cue["id"] in line]
    words = " ".join(row.split())
    assert "priority 7, 2 at once (key llm), 60 per 60s (key llm), buffer_one" in words, row
    [plain_row] = [line for line in listed.stdout.splitlines() if plain["id"] in line]
    assert "at once" not in plain_row and "priority" not in plain_row
    page = acc.json("cues", "list")
    by_id = {c["id"]: c for c in page["cues"]}
    assert by_id[cue["id"]]["priority"] == 7
    assert by_id[plain["id"]]["concurrency"] is None
    assert by_id[plain["id"]]["overlap_policy"] == "allow"


def test_update_changes_controls_and_the_no_flags_remove_them(
    account: Account,  # noqa: F811
) -> None:
    cue = account.create(payload={"task": "llm", "doc": 1})
    result = account(
        "cues", "update", cue["id"], "--priority", "-5", "--concurrency", "3",
        "--rate-limit", "10/30s", "--overlap-policy", "skip", "--required-payload-key", "doc",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Updated cue" in result.stdout and cue["id"] in result.stdout
    assert "3 at once" in result.stdout
    now = account.http.get(f"/v1/cues/{cue['id']}").json()
    assert now["priority"] == -5
    assert now["concurrency"] == {"limit": 3, "key": None}
    assert now["rate_limit"] == {"limit": 10, "period_seconds": 30, "key": None}
    assert now["overlap_policy"] == "skip"
    assert now["required_payload_keys"] == ["doc"]

    # an option left out stays as it is
    renamed = account.json("cues", "update", cue["id"], "--rate-limit", "5/1h:shared")
    assert renamed["rate_limit"] == {"limit": 5, "period_seconds": 3600, "key": "shared"}
    assert renamed["concurrency"] == {"limit": 3, "key": None}
    assert renamed["priority"] == -5

    cleared = account.json(
        "cues", "update", cue["id"], "--no-concurrency", "--no-rate-limit",
        "--no-required-payload-keys",
    )  # fmt: skip
    assert cleared["concurrency"] is None
    assert cleared["rate_limit"] is None
    assert cleared["required_payload_keys"] == []
    assert cleared["priority"] == -5 and cleared["overlap_policy"] == "skip"
    shown = account("cues", "show", cue["id"])
    lines = [" ".join(line.split()) for line in shown.stdout.splitlines()]
    assert "concurrency -" in lines and "rate limit -" in lines, shown.stdout


def test_bad_control_options_are_usage_errors(
    account: Account,  # noqa: F811
) -> None:
    cue = account.create()
    for option, value, message in (
        ("--concurrency", "0", "is not a limit like 2 or 2:llm"),
        ("--concurrency", "two", "is not a limit like 2 or 2:llm"),
        ("--rate-limit", "60", "is not a rate limit like 60/60"),
        ("--rate-limit", "60/0", "is not a rate limit like 60/60"),
        ("--rate-limit", "x/60:llm", "is not a rate limit like 60/60"),
        ("--overlap-policy", "sometimes", "'sometimes' is not one of"),
        # click's own range check ("1001 is not in the range -1000<=x<=1000"; before click
        # 8.2 the request model's "less than or equal to 1000"): either way the bound is named
        ("--priority", "1001", "1000"),
    ):
        result = account("cues", "update", cue["id"], option, value)
        fails(result, 2, message)
    fails(
        account("cues", "update", cue["id"], "--concurrency", "2", "--no-concurrency"),
        2,
        "--concurrency and --no-concurrency exclude each other",
    )
    fails(account("cues", "update", cue["id"]), 2, "give at least one option to change")
    unchanged = account.http.get(f"/v1/cues/{cue['id']}").json()
    assert unchanged["concurrency"] is None and unchanged["priority"] == 0


def test_what_the_server_refuses_exits_1_with_its_message(
    account: Account,  # noqa: F811
) -> None:
    result = account(
        "cues", "create", "--name", "needs-doc", "--every", "5m", "--task", "llm",
        "--required-payload-key", "doc",
    )  # fmt: skip
    fails(result, 1, "Payload lacks required key(s): doc")
    assert account.http.get("/v1/cues").json()["total"] == 0

    cue = account.create()
    long_key = "k" * 256
    result = account("cues", "update", cue["id"], "--concurrency", f"2:{long_key}")
    assert result.exit_code == 1, result.output
    assert "concurrency" in result.stderr
    missing = account("cues", "update", "cue_doesnotexist", "--priority", "1", "--json")
    assert missing.exit_code == 1 and missing.stdout == ""
    assert "not found" in missing.stderr.lower()


def test_executions_show_their_priority_and_what_a_held_back_one_waits_for(
    account: Account,  # noqa: F811
) -> None:
    cue = account.create(priority=4, concurrency={"limit": 1, "key": "gpu"})
    fired = [account.http.post(f"/v1/cues/{cue['id']}/fire").json()["id"] for _ in range(2)]
    claimed = account.http.post("/v1/executions/claim", json={"worker_id": "w1"})
    assert claimed.status_code == 200, claimed.text
    held = next(e for e in fired if e != claimed.json()["execution_id"])

    shown = account("executions", "show", held)
    assert shown.exit_code == 0, shown.output
    lines = [" ".join(line.split()) for line in shown.stdout.splitlines()]
    assert "waiting for concurrency: 1 of 1 in flight (key gpu)" in lines, shown.stdout
    assert "priority 4" in lines, shown.stdout
    listed = account("executions", "list", "--cue", cue["id"])
    assert listed.exit_code == 0, listed.output
    [row] = [line for line in listed.stdout.splitlines() if held in line]
    assert "pending (concurrency)" in row, listed.stdout

    account.http.post(
        f"/v1/executions/{claimed.json()['execution_id']}/outcome",
        json={"success": True, "worker_id": "w1"},
    )
    lines = [
        " ".join(line.split()) for line in account("executions", "show", held).stdout.splitlines()
    ]
    assert not any(line.startswith("waiting for") for line in lines)
