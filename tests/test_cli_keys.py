"""``cueflow keys create|list|revoke`` against a real ``cueflow serve`` on each store: the
secret is printed once and works with its scope, the list never shows a secret, a revoked key
stops working, and a key that is not full cannot manage keys (exit 1, the server's message)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.test_cli_commands import Account, any_server, fails, pg_server, sqlite_server

__all__ = ["any_server", "pg_server", "sqlite_server"]  # fixtures used by this module


@pytest.fixture
def owner(any_server: str) -> Iterator[Account]:
    """A fresh account on each store's server."""
    account = Account(any_server)
    yield account
    account.http.close()


def test_create_list_and_revoke_a_worker_key(owner: Account) -> None:
    created = owner("keys", "create", "--scope", "worker", "--name", "build-[b]host")
    assert created.exit_code == 0, created.output
    lines = created.stdout.splitlines()
    secret = lines[-1]
    assert secret.startswith("cue_sk_") and len(secret) == 39
    assert "Created worker key key_" in created.stdout and "build-[b]host" in created.stdout
    key_id = lines[0].split(" key ")[1].split()[0]

    worker = {"Authorization": f"Bearer {secret}"}
    claimable = httpx.get(f"{owner.base}/v1/executions/claimable", headers=worker)
    assert claimable.status_code == 200
    assert httpx.get(f"{owner.base}/v1/cues", headers=worker).status_code == 403

    table = owner("keys", "list")
    assert table.exit_code == 0, table.output
    assert key_id in table.stdout and "worker" in table.stdout and "(account key)" in table.stdout
    assert owner.key[:12] in table.stdout and secret not in table.stdout
    [listed] = owner.json("keys", "list")["keys"]
    assert (listed["id"], listed["name"], listed["scope"]) == (key_id, "build-[b]host", "worker")
    assert "api_key" not in listed

    revoked = owner("keys", "revoke", key_id)
    assert revoked.exit_code == 0, revoked.output
    assert f"Revoked key {key_id}" in revoked.stdout
    answer = httpx.get(f"{owner.base}/v1/executions/claimable", headers=worker)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "key_revoked"
    assert owner.json("keys", "list")["keys"] == []
    fails(owner("keys", "revoke", key_id), 1, "API key not found (404 key_not_found)")


def test_only_a_full_key_manages_keys(owner: Account) -> None:
    reader = owner.json("keys", "create", "--scope", "read")
    assert reader["scope"] == "read" and reader["api_key"].startswith("cue_sk_")
    owner.key = reader["api_key"]
    assert owner.json("keys", "list")["keys"][0]["id"] == reader["id"]  # a read key lists
    fails(owner("keys", "create", "--scope", "full"), 1, "insufficient_scope")
    fails(owner("keys", "revoke", reader["id"]), 1, "(403 insufficient_scope)")


def test_a_scope_is_required_and_checked(owner: Account) -> None:
    for args in (["keys", "create"], ["keys", "create", "--scope", "admin"]):
        result = owner(*args)
        assert result.exit_code == 2, result.output
