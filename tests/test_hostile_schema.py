"""Schemathesis over every operation of /openapi.json: no 5xx, and every answer is documented.

Each operation gets property-based requests, valid ones (positive) and ones that break the
schema (negative), sent through the real WSGI stack (CacheFront included) with an admin
token, a customer token or none. Each response must not be a server error and must conform
to the document: a documented status code, its content type and its schema. Runs on both
backends; seeded and derandomized so a failure in CI reproduces locally.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow  # minutes of generated requests: make test-slow
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Examples per operation and generation mode: PostgreSQL is where types, NUL bytes and
# integer ranges bite, so it gets the large budget; SQLite a smoke-sized one.
EXAMPLES = {
    "postgres": {GenerationMode.POSITIVE: 120, GenerationMode.NEGATIVE: 80},
    "sqlite": {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15},
}
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _documented_operations(app: Flask) -> dict[str, bool]:
    """'METHOD /path' -> has inputs, for every operation the document lists (read by us)."""
    spec = app.test_client().get("/openapi.json").get_json()
    return {
        f"{method.upper()} {path}": bool(op.get("parameters") or op.get("requestBody"))
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def _exercise(operation: Any, mode: GenerationMode, budget: int, tokens: list[Any]) -> int:
    """Run `budget` examples of one operation in one mode; the number of requests sent."""
    sent = 0

    @given(case=operation.as_strategy(generation_mode=mode), token=st.sampled_from(tokens))
    @settings(
        max_examples=budget,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    def run(case: Any, token: dict[str, str] | None) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(headers=token, checks=CHECKS)

    run()
    return sent


# 33 operations on PostgreSQL took 188 s alone on this machine (2026-12-02, with the webhooks).
@pytest.mark.timeout(480)
def test_every_operation_survives_generated_input(
    backend: str,
    seeded: Flask,
    admin_headers: dict[str, str],
    customer_headers: dict[str, str],
) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", seeded)
    documented = _documented_operations(seeded)
    tokens: list[Any] = [admin_headers, customer_headers, None]
    exercised: Counter[str] = Counter()
    failures: dict[str, str] = {}
    started = time.monotonic()
    # Password changes and logouts revoke the shared tokens: after every other operation.
    last = {"/api/v1/users/me/password": 1, "/api/v1/auth/logout": 2}
    ops = sorted((r.ok() for r in schema.get_all_operations()), key=lambda o: last.get(o.path, 0))
    for operation in ops:
        for mode, budget in EXAMPLES[backend].items():
            if mode is GenerationMode.NEGATIVE and not documented[operation.label]:
                continue  # nothing to break: no parameters, no body
            try:
                exercised[operation.label] += _exercise(operation, mode, budget, tokens)
            except (Exception, BaseExceptionGroup) as exc:  # run all; report every failure
                failures[f"{operation.label} ({mode.value})"] = str(exc)[:3000]
    elapsed = time.monotonic() - started

    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert set(exercised) == set(documented)
    assert len(documented) >= 22
    # Input-less operations exhaust their space (3 tokens) in 3 examples; the rest must not
    # stop early (hypothesis ends a run when it has seen every distinct input).
    with_inputs = {label: n for label, n in exercised.items() if documented[label]}
    budget = sum(EXAMPLES[backend].values())
    starved = {label: n for label, n in with_inputs.items() if n < budget // 2}
    assert not starved, starved
    print(
        f"\n[{backend}] {len(exercised)} operations ({len(with_inputs)} with inputs), "
        f"{sum(exercised.values())} requests, per operation with inputs min "
        f"{min(with_inputs.values())} max {max(with_inputs.values())}, {elapsed:.1f} s"
    )
