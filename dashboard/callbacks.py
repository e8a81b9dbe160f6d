"""What a Dash callback request must look like before Dash dispatches it.

The browser posts every callback to `/_dash-update-component` as JSON (`output`, `outputs`, `inputs`,
`state`, `changedPropIds`). Dash trusts that shape: a body that is not an object, names no registered
callback, or carries the wrong number of inputs ends in a KeyError or IndexError inside Dash, a 500.
Anyone can post anything, so `install` checks the shape against the app's callback map first and answers
400 with one line saying what is wrong. The *values* are each callback's business: every callback of
this app reads its inputs leniently (dashboard/filters.py, the Cost page's pickers), and
tests/hardening/test_bad_input.py posts odd values to every one of them.
"""

from __future__ import annotations

import logging
from typing import Any

from dash import Dash
from flask import Flask, Response, request

log = logging.getLogger("aoai_lens.callbacks")

ENDPOINT = "/_dash-update-component"
# Dash's own routing callback (pages): its inputs are the address's path and query string
PAGES_ROUTER = "_pages_location"


def _wildcard_all(dep_id: str) -> bool:
    return '["ALL"]' in dep_id or '["ALLSMALLER"]' in dep_id


def _address_problem(prop: str, value: Any, prefix: str) -> str | None:
    """Dash's router takes the address as the browser reports it: a path under the app's prefix and a
    query string. Anything else raises inside Dash."""
    if value is None:
        return None
    if not isinstance(value, str):
        return "the address must be text"
    if prop == "pathname" and not value.startswith(prefix):
        return f"the path must start with {prefix}"
    return None


def _dependency_problem(where: str, items: Any, declared: list[dict[str, Any]], prefix: str) -> str | None:
    if not isinstance(items, list) or len(items) != len(declared):
        return f"{where}: expected a list of {len(declared)}"
    for i, (item, decl) in enumerate(zip(items, declared, strict=True)):
        many = _wildcard_all(decl["id"])
        if isinstance(item, list) != many:
            return f"{where}[{i}]: expected {'a list' if many else 'one entry'}"
        for entry in item if many else [item]:
            if not isinstance(entry, dict) or "id" not in entry or not isinstance(entry.get("property"), str):
                return f"{where}[{i}]: expected {{id, property, value}}"
            if decl["id"] == PAGES_ROUTER:
                why = _address_problem(decl["property"], entry.get("value"), prefix)
                if why:
                    return f"{where}[{i}]: {why}"
    return None


def _spec(output: str, callback_map: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The callback behind `output`. A new worker's first requests may arrive together: Dash copies the
    pages' callbacks into the app's map on the first one, and the others must not be refused meanwhile."""
    spec = callback_map.get(output)
    if spec is None:
        from dash import _callback

        spec = _callback.GLOBAL_CALLBACK_MAP.get(output)
    return spec


def problem(body: Any, callback_map: dict[str, dict[str, Any]], prefix: str = "/") -> str | None:
    """Why Dash could not dispatch `body` (None: it can)."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    output = body.get("output")
    if not isinstance(output, str):
        return "no such callback"
    spec = _spec(output, callback_map)
    if spec is None:
        return "no such callback"
    if not callable(spec.get("callback")):  # a clientside callback: it runs in the browser only
        return "no such callback on the server"
    outputs = body.get("outputs")
    n_outputs = len(output[2:-2].split("...")) if output.startswith("..") else 1
    if n_outputs > 1 and not (isinstance(outputs, list) and len(outputs) == n_outputs):
        return f"outputs: expected a list of {n_outputs}"
    if n_outputs == 1 and not isinstance(outputs, dict | list):
        return "outputs: expected an object"
    for key in ("inputs", "state"):
        found = _dependency_problem(key, body.get(key, []), spec.get(key) or [], prefix)
        if found:
            return found
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return "changedPropIds: expected a list of strings"
    return None


def install(server: Flask, app: Dash) -> None:
    """Refuse (400) callback requests Dash could not dispatch. Runs after Dash's own setup hook, so the
    callback map holds the pages' callbacks too."""

    @server.before_request
    def _check_callback_request() -> Any:
        if request.method != "POST" or not request.path.endswith(ENDPOINT):
            return None
        body = request.get_json(silent=True)
        why = problem(body, app.callback_map, str(app.config.requests_pathname_prefix or "/"))
        if why is None:
            return None
        log.info("callback request refused: %s", why)
        return Response(f"400 bad callback request: {why}\n", status=400, mimetype="text/plain")
