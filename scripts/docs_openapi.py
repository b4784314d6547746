"""MkDocs hook (``mkdocs.yml``, ``hooks:``): the REST API reference, written from the OpenAPI
document of the app ``cueflow serve`` runs.

At each build it adds two generated files to the site: ``reference/openapi.json`` (the document
as ``GET /openapi.json`` serves it) and ``reference/rest-api.md``, a page listing each operation
by tag with its parameters, request body and responses, and the schemas they name. Nothing is
written into ``docs/``; the page cannot drift from the code.
"""

from __future__ import annotations

import json
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

PAGE = "reference/rest-api.md"
DOCUMENT = "reference/openapi.json"
METHODS = ("get", "post", "put", "patch", "delete")


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of a server app over an in-memory store (never started)."""
    import cueflow
    from cueflow.api import create_app

    return create_app(cueflow.open_engine("sqlite://")).openapi()


def _type(schema: dict[str, Any]) -> str:
    """A short type for a schema: a $ref's name, a type, ``a | b`` for anyOf."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#schema-{name.lower()})"
    if "anyOf" in schema:
        return " \\| ".join(_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    return f"`{schema.get('type', 'any')}`"


def _cell(text: str | None) -> str:
    """Text fit for a table cell."""
    return " ".join((text or "").split()).replace("|", "\\|")


def _body_schema(part: dict[str, Any]) -> str:
    """The type of a request body or response's JSON content, if any."""
    content = part.get("content", {})
    for media in content.values():
        return _type(media.get("schema", {}))
    return ""


def _operation(method: str, path: str, op: dict[str, Any]) -> list[str]:
    """The lines describing one operation."""
    lines = [f"### `{method.upper()} {path}`", ""]
    if op.get("summary"):
        lines += [f"**{op['summary']}** (operation id `{op.get('operationId', '')}`)", ""]
    if op.get("description"):
        lines += [op["description"].replace("``", "`"), ""]
    if op.get("security") == []:
        lines += ["No authentication.", ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required | |", "|---|---|---|---|---|"]
        for p in params:
            lines.append(
                f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | "
                f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description'))} |"
            )
        lines.append("")
    if "requestBody" in op:
        required = "" if op["requestBody"].get("required") else " (optional)"
        lines += [f"Request body{required}: {_body_schema(op['requestBody'])}", ""]
    lines += ["| status | answer | |", "|---|---|---|"]
    for status, response in op.get("responses", {}).items():
        lines.append(
            f"| {status} | {_body_schema(response)} | {_cell(response.get('description'))} |"
        )
    return [*lines, ""]


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    """The lines describing one component schema."""
    lines = [f"### {name} {{ #schema-{name.lower()} }}", ""]
    if schema.get("description"):
        lines += [_cell(schema["description"]).replace("``", "`"), ""]
    properties = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", []))
        lines += ["| field | type | required | |", "|---|---|---|---|"]
        for field, spec in properties.items():
            lines.append(
                f"| `{field}` | {_type(spec)} | {'yes' if field in required else 'no'} | "
                f"{_cell(spec.get('description'))} |"
            )
    elif "enum" in schema:
        lines.append("One of " + ", ".join(f"`{v}`" for v in schema["enum"]) + ".")
    return [*lines, ""]


def render(document: dict[str, Any]) -> str:
    """The reference page for ``document``."""
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                op = item[method]
                by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((method, path, op))
    lines = [
        "# REST API reference",
        "",
        f"Generated at build time from the OpenAPI document of cueflow "
        f"{document['info']['version']} (the one a server serves at `GET /openapi.json`; "
        f"download it: [openapi.json](openapi.json)). Authentication is the account's API key "
        "as a bearer token (`Authorization: Bearer cue_sk_...`) unless an operation says "
        "otherwise. Errors use the contract's envelope, `ErrorEnvelope`: "
        '`{"error": {"code": "...", "message": "...", "status": 4xx}}`. What each field means '
        "on the wire and where cueflow extends CueAPI: [Compatibility](../compatibility.md).",
        "",
    ]
    for tag in sorted(by_tag):
        lines += [f"## {tag}", ""]
        for method, path, op in by_tag[tag]:
            lines += _operation(method, path, op)
    lines += ["## Schemas", ""]
    for name, schema in sorted(document.get("components", {}).get("schemas", {}).items()):
        lines += _schema(name, schema)
    return "\n".join(lines)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated reference page and the document itself."""
    document = openapi_document()
    files.append(File.generated(config, PAGE, content=render(document)))
    files.append(File.generated(config, DOCUMENT, content=json.dumps(document, indent=2)))
    return files
