"""``/openapi.json`` generates good clients: every operation has a readable unique id
(``resource.action``, from :data:`cueflow.operation_ids.OPERATION_IDS`), a tag for its resource
and an example of its request and its answer; the document validates as OpenAPI; and a common
generator's Python client built from it imports."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.routing import iter_route_contexts

from cueflow.api.app import create_app
from cueflow.operation_ids import OPERATION_IDS
from cueflow.scopes import route_key

OPERATION_ID = re.compile(r"^[a-z_]+\.[a-z_]+$")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app().openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        resolved: dict[str, Any] = document["components"]["schemas"][
            schema["$ref"].rsplit("/", 1)[-1]
        ]
        return resolved
    return schema


def test_every_operation_has_its_declared_id_and_no_declared_id_is_stale(
    document: dict[str, Any],
) -> None:
    served = {
        route_key(method, context.original_route.path)
        for context in iter_route_contexts(create_app().routes)
        for method in context.methods or ()
    }
    assert sorted(set(OPERATION_IDS) - served) == [], "these ids name no route"
    documented = {route_key(m, p): op["operationId"] for m, p, op in _operations(document)}
    assert sorted(set(documented) - set(OPERATION_IDS)) == [], "add these to OPERATION_IDS"
    assert documented == {key: OPERATION_IDS[key] for key in documented}


def test_operation_ids_are_unique_resource_actions(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in _operations(document)]
    assert [i for i in ids if not OPERATION_ID.match(i)] == []
    assert len(ids) == len(set(ids))
    assert {"cues.create", "cues.list", "cues.get", "executions.claim"} <= set(ids)
    assert {"executions.claim_next", "flows.run"} <= set(ids)


def test_every_operation_is_tagged_by_its_resource(document: dict[str, Any]) -> None:
    for _, _, operation in _operations(document):
        assert operation["tags"] == [operation["operationId"].partition(".")[0]]


def _request_examples(document: dict[str, Any], operation: dict[str, Any]) -> list[Any]:
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    examples = list(schema.get("examples", []))
    for member in schema.get("anyOf", [schema]):
        examples += _resolve(document, member).get("examples", [])
    return examples


def _answers(operation: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for code, answer in operation["responses"].items():
        schema = answer.get("content", {}).get("application/json", {}).get("schema")
        if code.startswith("2") and schema:
            found.append(schema)
    return found


def _check(document: dict[str, Any], schema: dict[str, Any], example: Any) -> None:
    """``example`` fits ``schema`` (with the document's components for its references)."""
    jsonschema.validate(example, {**schema, "components": document["components"]})


def test_every_request_body_has_an_example_that_fits_it(document: dict[str, Any]) -> None:
    bodies = 0
    for method, path, operation in _operations(document):
        if "requestBody" not in operation:
            continue
        bodies += 1
        examples = _request_examples(document, operation)
        assert examples, f"{method} {path} has no request example"
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        for example in examples:
            _check(document, schema, example)
    assert bodies >= 20


def test_every_json_answer_has_an_example_that_fits_it(document: dict[str, Any]) -> None:
    for method, path, operation in _operations(document):
        for schema in _answers(operation):
            examples = _resolve(document, schema).get("examples")
            assert examples, f"{method} {path} has no answer example"
            for example in examples:
                _check(document, schema, example)


def test_operations_without_a_json_answer_are_the_empty_ones(document: dict[str, Any]) -> None:
    bare = sorted(op["operationId"] for _, _, op in _operations(document) if not _answers(op))
    assert bare == [
        "cues.delete",
        "flows.delete",
        "keys.revoke",
        "server.metrics",
        "workers.delete",
    ]


def test_the_document_validates_as_openapi(document: dict[str, Any]) -> None:
    from openapi_spec_validator import validate

    validate(document)


def test_a_client_generated_by_openapi_python_client_imports(
    document: dict[str, Any], tmp_path: Path
) -> None:
    if importlib.util.find_spec("openapi_python_client") is None:
        pytest.skip("openapi-python-client is not installed (the dev extra has it)")
    import json

    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document))
    package = tmp_path / "cueflow_generated"
    bin_dir = Path(sys.executable).parent
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--meta",
            "none",
            "--output-path",
            str(package),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        generated = importlib.import_module("cueflow_generated")
        assert hasattr(generated, "AuthenticatedClient")
        for _, _, operation in _operations(document):
            resource, _, action = operation["operationId"].partition(".")
            module = importlib.import_module(
                f"cueflow_generated.api.{resource}.{resource}_{action}"
            )
            assert callable(module.sync_detailed), operation["operationId"]
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] == "cueflow_generated"]:
            del sys.modules[name]
