"""The layout's rules, checked on the source: one job per module, one way out of a route.

Each rule here is one the structure is meant to carry (docs/decisions.md, "The write path"
and "The response path"), so breaking it fails a test instead of waiting for a review.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import typing
from pathlib import Path

import pytest

from flipkart_api.orm import Base

SRC = Path(__file__).resolve().parents[2] / "src" / "flipkart_api"
MAX_LINES = 250
# Modules that hold use cases: what they return is what routes (and the CLI) send on.
SERVICES = (
    "flipkart_api.auth.service",
    "flipkart_api.catalog.service",
    "flipkart_api.orders.cart",
    "flipkart_api.orders.idempotency",
    "flipkart_api.orders.service",
    "flipkart_api.orders.transitions",
)
ROUTES = (
    "auth/routes.py",
    "catalog/routes.py",
    "orders/routes.py",
    "events/routes.py",
    "health.py",
    "tutorial.py",
)
WEB = ("flask", "werkzeug", "apiflask", "sqlalchemy", "pydantic")


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "versions" not in p.parts)


def _imports(path: Path) -> set[str]:
    """Top-level names of everything a module imports (relative imports as '.name')."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            prefix = "." * node.level
            names.add(prefix + (node.module or "").split(".")[0])
    return names


def test_every_module_stays_small() -> None:
    """About 250 lines at most (STYLE.md rule 11); migrations are history, not modules."""
    sizes = {str(p.relative_to(SRC)): len(p.read_text().splitlines()) for p in _modules()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_domain_errors_know_no_web_framework() -> None:
    """errors.py is raised by services, the CLI and the worker: it imports nothing of HTTP."""
    assert _imports(SRC / "errors.py") & set(WEB) == set()


def test_services_never_build_http_answers() -> None:
    """No service imports the response or problem builders, or Flask's Response."""
    for name in SERVICES:
        path = SRC / (name.removeprefix("flipkart_api.").replace(".", "/") + ".py")
        source = path.read_text()
        assert {".responses", ".problems", "..responses", "..problems"} & _imports(path) == set()
        assert "Response" not in source, name


def _is_orm_or_tuple(hint: object) -> bool:
    origin = typing.get_origin(hint)
    if origin is tuple or hint is tuple:
        return True
    if origin is not None:  # X | None, list[X]: look inside
        return any(_is_orm_or_tuple(arg) for arg in typing.get_args(hint))
    return isinstance(hint, type) and issubclass(hint, Base)


@pytest.mark.parametrize("module_name", SERVICES)
def test_public_use_cases_return_named_results(module_name: str) -> None:
    """Output models, Cached, named dataclasses or None: never an ORM object or a bare tuple.

    The one ORM object a service hands out is TokenHolder.user, to the bearer check (routes
    read the caller's id and role from it); it is a field of a named result, not a return.
    """
    module = importlib.import_module(module_name)
    offenders = []
    for name, function in inspect.getmembers(module, inspect.isfunction):
        if name.startswith("_") or function.__module__ != module_name:
            continue
        hints = typing.get_type_hints(function)
        assert "return" in hints, f"{module_name}.{name} declares no return type"
        if _is_orm_or_tuple(hints["return"]):
            offenders.append(f"{name} -> {hints['return']}")
    assert offenders == []


def _views(path: Path) -> list[ast.FunctionDef]:
    """The functions a module registers as routes (decorated with @bp.get/post/...)."""
    verbs = {"get", "post", "put", "patch", "delete", "route"}
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and any(
            isinstance(d, ast.Call)
            and isinstance(d.func, ast.Attribute)
            and d.func.attr in verbs
            and isinstance(d.func.value, ast.Name)
            and d.func.value.id == "bp"
            for d in node.decorator_list
        ):
            found.append(node)
    return found


@pytest.mark.parametrize("route_module", ROUTES)
def test_every_route_answers_through_respond(route_module: str) -> None:
    """One way out of a view: `return respond(...)`, so every answer gets the same headers."""
    views = _views(SRC / route_module)
    assert views, route_module
    offenders = []
    for view in views:
        returns = [n for n in ast.walk(view) if isinstance(n, ast.Return)]
        for ret in returns:
            call = ret.value
            ok = (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == "respond"
            )
            if not ok:
                offenders.append(f"{view.name}:{ret.lineno}")
        if not returns:
            offenders.append(f"{view.name}: no return")
    assert offenders == []


def test_the_structure_tests_see_every_route_module() -> None:
    """A new blueprint module must be added to ROUTES, or its views escape the check above."""
    registering = {
        str(p.relative_to(SRC))
        for p in _modules()
        if "APIBlueprint(" in p.read_text() and p.name != "test_structure.py"
    }
    assert registering == set(ROUTES)
