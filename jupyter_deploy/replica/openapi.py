"""The OpenAPI document of one deployment, made from its real input schema.

BentoML's generated document describes ``instances`` as a list of anything, so a client
(or a fuzzer) reading it cannot know the columns. This one says exactly what the runtime
accepts: each instance is a record (every column by name, its JSON type, whether it may
be null; all required, nothing else) or a row (the values in column order, exactly as
many as there are columns), at most ``max_batch_rows`` of them. It is served at
``/docs.json`` and checked by an OpenAPI fuzzer in the test suite (schema-valid requests
must succeed, invalid ones must get a 4xx).
"""

from __future__ import annotations

from typing import Any

from .keyring import OPEN_ROUTES

_FLOAT_MAX = 1e308  # the runtime refuses numbers past it (jd_runtime.NUMBER_LIMIT)
_INT64 = (-(2**63), 2**63 - 1)
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}


def column_schema(kind: str, nullable: bool) -> dict[str, Any]:
    """JSON Schema of one column's value as the runtime accepts it (``jd_runtime._check_value``)."""
    if kind == "float":
        schema: dict[str, Any] = {"type": ["number"], "minimum": -_FLOAT_MAX, "maximum": _FLOAT_MAX}
    elif kind == "integer":
        schema = {"type": ["integer"], "minimum": _INT64[0], "maximum": _INT64[1]}
    elif kind == "bool":
        schema = {"type": ["boolean", "number"], "minimum": -_FLOAT_MAX, "maximum": _FLOAT_MAX}
    elif kind == "string":  # numbers and booleans are taken as their text
        schema = {"type": ["string", "number", "boolean"],
                  "minimum": -_FLOAT_MAX, "maximum": _FLOAT_MAX}  # fmt: skip
    else:  # datetime: an ISO 8601 string
        schema = {"type": ["string"], "format": "date-time"}
    if nullable:
        schema["type"] = [*schema["type"], "null"]
    return schema


def instances_schema(columns: list[dict[str, Any]], max_rows: int) -> dict[str, Any]:
    """``instances``: 1 to ``max_rows`` records or rows of ``columns``."""
    values = [column_schema(c["kind"], c.get("nullable", False)) for c in columns]
    record = {"type": "object", "title": "record",
              "properties": {c["name"]: v for c, v in zip(columns, values, strict=True)},
              "required": [c["name"] for c in columns], "additionalProperties": False}  # fmt: skip
    row = {"type": "array", "title": "row", "prefixItems": values, "items": False,
           "minItems": len(columns), "maxItems": len(columns)}  # fmt: skip
    return {"type": "array", "minItems": 1, "maxItems": max_rows,
            "items": {"oneOf": [record, row]}}  # fmt: skip


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "invalid input",
        401: "missing, unknown, revoked or expired key",
        403: "the key lacks this route's scope",
        404: "nothing known for this request",
        413: "too many rows or too large a body",
        422: "the model rejected the input",
    }
    return {str(s): {"description": reasons[s], **_json(_ERROR)} for s in statuses}


def document(name: str, version: int, schema: dict[str, Any], methods: list[str],
             max_rows: int, monitoring: bool, auth: bool = True) -> dict[str, Any]:  # fmt: skip
    """The OpenAPI 3.1 document of version ``version`` of deployment ``name``."""
    body = {"type": "object", "required": ["instances"],
            "properties": {"instances": instances_schema(schema["columns"], max_rows)}}  # fmt: skip
    answer = {"type": "object", "required": ["predictions", "request_id"],
              "properties": {"predictions": {"type": "array"}, "request_id": {"type": "string"},
                             "classes": {"type": "array"}}}  # fmt: skip
    locked = (401, 403) if auth else ()
    paths: dict[str, Any] = {}
    for method in methods:
        paths[f"/{method}"] = {"post": {
            "operationId": method, "requestBody": {"required": True, **_json(body)},
            "responses": {"200": {"description": "one answer per instance", **_json(answer)},
                          **_errors(400, *locked, 413, 422)}}}  # fmt: skip
    if monitoring:
        item = {"type": "object", "required": ["request_id", "label"],
                "properties": {"request_id": {"type": "string"}, "label": {}}}  # fmt: skip
        feedback = {"oneOf": [item, {"type": "object", "required": ["feedback"], "properties": {
            "feedback": {"type": "array", "minItems": 1, "items": item}}}]}  # fmt: skip
        paths["/feedback"] = {"post": {
            "operationId": "feedback", "requestBody": {"required": True, **_json(feedback)},
            "responses": {"200": {"description": "labels matched", **_json({"type": "object"})},
                          **_errors(400, *locked, 404, 413)}}}  # fmt: skip
    text = {"type": "string"}
    gets = {"/metadata": ("application/json", {"type": "object"}),
            "/schema.json": ("application/json", {"type": "object"}),
            "/docs.json": ("application/json", {"type": "object"}),
            "/docs": ("text/html", text)}  # fmt: skip
    if monitoring:
        gets["/metrics"] = ("text/plain", text)
    for path, (media, out) in gets.items():
        paths[path] = {"get": {"operationId": path.strip("/").replace(".", "_"), "responses": {
            "200": {"description": "ok", "content": {media: {"schema": out}}},
            **_errors(*locked)}}}  # fmt: skip
    for path in OPEN_ROUTES:
        paths[path] = {
            "get": {
                "operationId": path.strip("/"),
                "security": [],
                "responses": {
                    "200": {"description": "serving", "content": {"text/plain": {"schema": text}}}
                },
            }
        }
    doc: dict[str, Any] = {"openapi": "3.1.0", "paths": paths,
                           "info": {"title": name, "version": str(version)}}  # fmt: skip
    if auth:
        doc["components"] = {"securitySchemes": {"key": {"type": "http", "scheme": "bearer"}}}
        doc["security"] = [{"key": []}]
    return doc
