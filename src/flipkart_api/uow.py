"""The unit of work: the one way to write.

    with UnitOfWork(sess) as uow:
        sess.add(thing)
        uow.after_commit(lambda: invalidate(thing.id))

Entering begins the write transaction the backend needs; a clean exit commits once; any
exception rolls back (rollback unless committed, as in cosmicpython's
service_layer/unit_of_work.py); an IntegrityError becomes the domain error its constraint
names (integrity.py); callbacks registered with `after_commit` run, in order, only after the
commit succeeded. `guard` makes every other commit, ORM flush or INSERT/UPDATE/DELETE
statement of the app's sessions fail, so a write path cannot forget any of this.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from .integrity import ErrorFactory, domain_error

log = logging.getLogger(__name__)

# Keys in Session.info: a unit of work is open / is committing right now.
_OPEN = "flipkart_uow_open"
_COMMITTING = "flipkart_uow_committing"


class OutsideUnitOfWork(RuntimeError):
    """A commit, ORM flush or DML statement of an app session no unit of work owns: a bug."""


class UnitOfWork:
    """One write transaction on `session`; see the module docstring."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._callbacks: list[Callable[[], object]] = []
        self._explained: dict[str, ErrorFactory] = {}
        self._finished = False

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Run `callback` once this unit has committed; never if it rolls back."""
        self._callbacks.append(callback)

    def explain(self, constraint: str, error: ErrorFactory) -> None:
        """Answer a violation of `constraint` with `error()` (more precise than integrity.KNOWN)."""
        self._explained[constraint] = error

    def rollback(self) -> None:
        """End the unit without writing (a replayed order): nothing commits, no callback runs."""
        self.session.rollback()
        self._finished = True
        self._callbacks.clear()

    def __enter__(self) -> UnitOfWork:
        info = self.session.info
        if info.get(_OPEN):
            raise RuntimeError("a unit of work is already open on this session")
        info[_OPEN] = True
        try:
            _begin(self.session)
        except BaseException:
            info.pop(_OPEN, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc is not None:
                if not self._finished:
                    self.session.rollback()
                if isinstance(exc, IntegrityError):
                    self._raise_domain_error(exc)
                return  # the with statement re-raises exc
            if not self._finished:
                self._commit()
        finally:
            self.session.info.pop(_OPEN, None)
        self._run_callbacks()

    def _commit(self) -> None:
        self.session.info[_COMMITTING] = True
        try:
            self.session.commit()
        except IntegrityError as error:  # a flush at commit broke a constraint
            self.session.rollback()
            self._raise_domain_error(error)
            raise
        except BaseException:
            self.session.rollback()
            raise
        finally:
            self.session.info.pop(_COMMITTING, None)
        self._finished = True

    def _raise_domain_error(self, error: IntegrityError) -> None:
        """Raise the domain error the constraint names; return (to re-raise) when unknown."""
        mapped = domain_error(error, self._explained)
        if mapped is not None:
            raise mapped from None

    def _run_callbacks(self) -> None:
        """Each callback on its own: the commit stands whatever they do, so failures are logged."""
        for callback in self._callbacks:
            try:
                callback()
            except Exception:
                log.exception("after-commit callback %r failed; the commit stands", callback)
        self._callbacks.clear()


def _begin(session: Session) -> None:
    """Start the write the backend's way; what the session loaded before is read afresh.

    SQLite: a fresh transaction that takes the write lock first (BEGIN IMMEDIATE, see
    db._sqlite_begin), so concurrent writers queue instead of failing with SQLITE_BUSY.
    PostgreSQL: the read transaction the request may have begun (the authenticated user)
    goes on: under READ COMMITTED every statement sees what is committed when it runs, and
    rolling back first cost a round trip per write. Either way ORM objects loaded before are
    expired, so a write never acts on what was read before it began.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.rollback()
        session.connection(execution_options={"sqlite_immediate": True})
    else:
        session.expire_all()


def guard(factory: sessionmaker[Session]) -> None:
    """Make a commit, ORM flush or DML statement of this factory's sessions fail outside a unit."""
    event.listen(factory, "before_commit", _refuse_commit)
    event.listen(factory, "before_flush", _refuse_flush)
    event.listen(factory, "do_orm_execute", _refuse_dml)


def _refuse_commit(session: Session) -> None:
    if not session.info.get(_COMMITTING):
        raise OutsideUnitOfWork("commit outside a unit of work: use `with UnitOfWork(sess)`")


def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    # A flushed change would otherwise ride along with the next unit's commit (PostgreSQL
    # continues the read transaction) or be lost silently (SQLite begins afresh).
    if not session.info.get(_OPEN):
        raise OutsideUnitOfWork("ORM change outside a unit of work: use `with UnitOfWork(sess)`")


def _refuse_dml(state: ORMExecuteState) -> None:
    # Core INSERT/UPDATE/DELETE through the session (orders are written that way): outside
    # a unit it would be rolled back at teardown, or ride along with a later unit's commit.
    if (state.is_insert or state.is_update or state.is_delete) and not state.session.info.get(
        _OPEN
    ):
        raise OutsideUnitOfWork(
            "INSERT/UPDATE/DELETE outside a unit of work: use `with UnitOfWork`"
        )
