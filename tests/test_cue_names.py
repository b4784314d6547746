"""Cue names are compared as Unicode text: canonically equivalent spellings are one name.

"café" typed on one keyboard is U+00E9 (NFC); pasted from elsewhere it may be "e" + U+0301
(NFD). cueflow stores and compares names in NFC, on both stores.
"""

from __future__ import annotations

import unicodedata

import httpx

from tests.helpers import assert_error, create_cue

NFC = unicodedata.normalize("NFC", "café")
NFD = unicodedata.normalize("NFD", "café")


def test_the_two_spellings_differ() -> None:
    assert NFC != NFD


async def test_a_name_is_stored_in_nfc(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await create_cue(client, auth, name=NFD)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == NFC
    fetched = await client.get(f"/v1/cues/{response.json()['id']}", headers=auth)
    assert fetched.json()["name"] == NFC


async def test_nfc_and_nfd_spellings_are_one_name(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await create_cue(client, auth, name=NFC)
    assert first.status_code == 201, first.text
    second = await create_cue(client, auth, name=NFD)
    assert_error(second, 409, "duplicate_cue_name")


async def test_renaming_to_another_spelling_of_a_taken_name_conflicts(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    assert (await create_cue(client, auth, name=NFD)).status_code == 201
    other = (await create_cue(client, auth, name="other")).json()
    renamed = await client.patch(f"/v1/cues/{other['id']}", json={"name": NFC}, headers=auth)
    assert_error(renamed, 409, "duplicate_cue_name")


async def test_a_rename_is_stored_in_nfc(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    cue = (await create_cue(client, auth, name="plain")).json()
    renamed = await client.patch(f"/v1/cues/{cue['id']}", json={"name": NFD}, headers=auth)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == NFC


async def test_the_length_limit_applies_to_the_normalised_name(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    # 255 characters once composed, 510 as sent
    response = await create_cue(client, auth, name=unicodedata.normalize("NFD", "é" * 255))
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "é" * 255
