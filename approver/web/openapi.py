"""The OpenAPI 3.1 description of the HTTP API, served at `GET /openapi.json`.

The document is kept in `schemas/openapi.json`, where the request-body schemas are `$ref`s
to their sibling files (`tyk-webhook.json`, `billing-event.json`): the very files the
validators load. Serving it bundles them in: each referenced file is embedded, as loaded by
`approver.web.schemas.schema`, under `#/components/schemas/<Name>`, and every reference into
it is rewritten to point there. There is one copy of each schema, on disk.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files

from flask import Blueprint, Response

from approver.web import schemas

bp = Blueprint("openapi", __name__)

SOURCE = "openapi.json"
_COMPONENT = "#/components/schemas/"


def source() -> dict:
    """The document as stored, with `$ref`s to the schema files beside it."""
    return json.loads(files(schemas.__name__).joinpath(SOURCE).read_text())


def _schema_files(doc: dict) -> dict[str, str]:
    """File name -> component name, for components that are just `{"$ref": "<file>.json"}`."""
    found = {}
    for name, value in doc.get("components", {}).get("schemas", {}).items():
        target = value.get("$ref", "") if isinstance(value, dict) and len(value) == 1 else ""
        if target.endswith(".json") and "/" not in target and "#" not in target:
            found[target] = name
    return found


def _rewrite(node, rewrite_ref):
    """`node` with every `$ref` string passed through `rewrite_ref` (in place)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                node[key] = rewrite_ref(value)
            else:
                _rewrite(value, rewrite_ref)
    elif isinstance(node, list):
        for item in node:
            _rewrite(item, rewrite_ref)
    return node


def bundle(doc: dict) -> dict:
    """`doc` with the referenced schema files embedded and every reference made local."""
    doc = copy.deepcopy(doc)
    targets = _schema_files(doc)

    def external(ref: str) -> str:
        target, _, pointer = ref.partition("#")
        if target in targets:
            return _COMPONENT + targets[target] + pointer
        return ref

    _rewrite(doc, external)
    components = doc["components"]["schemas"]
    for filename, name in targets.items():
        # A copy: the validators share the loaded dict.
        embedded = copy.deepcopy(schemas.schema(filename.removesuffix(".json")))
        # Embedded, the schema is no longer a resource of its own: its `$id` would rebase
        # its `#/...` references away from this document, so it goes, and they are rewritten.
        embedded.pop("$schema", None)
        schema_id = embedded.pop("$id", None)
        base = _COMPONENT + name

        def internal(ref: str, base: str = base) -> str:
            return base + ref[1:] if ref.startswith("#") else ref

        components[name] = _rewrite(embedded, internal)
        components[name]["x-source"] = f"approver/web/schemas/{filename}"
        if schema_id:
            components[name]["x-schema-id"] = schema_id
    return doc


def _version() -> str | None:
    try:
        return version("tyk-approver")
    except PackageNotFoundError:
        return None


@cache
def document() -> dict:
    """The served document (built once; do not mutate)."""
    doc = bundle(source())
    doc["info"]["version"] = _version() or doc["info"]["version"]
    return doc


@cache
def _body() -> bytes:
    return json.dumps(document(), ensure_ascii=False, separators=(",", ":")).encode()


@bp.get("/openapi.json")
def openapi():
    """This API's OpenAPI 3.1 description."""
    response = Response(_body(), mimetype="application/json")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
