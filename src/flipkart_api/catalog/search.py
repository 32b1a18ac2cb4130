"""A search plan as SQL on each backend, and relevance as tiers walked newest first.

PostgreSQL matches the generated tsvector columns (migrations 0001, 0003, 0004: everything,
name and brand, the description's own words) with to_tsquery('english'); SQLite matches
products_fts (migration 0009) with an FTS5 query. Both get the same plan (search_plan.py)
and rank the same way:

    3  every clause in the name or brand, or naming the product's category, as written
    2  the same with typos corrected and the last word completed
    1  every clause somewhere, the description included
    0  every clause but one (SearchPlan.relaxed), somewhere
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    false,
    func,
    literal_column,
    not_,
    or_,
    text,
    true,
)

from .models import Product
from .search_bounds import walked_tiers
from .search_plan import ClausePlan, SearchPlan
from .search_syntax import Term

TIERS = (3, 2, 1, 0)
_ENGLISH: ColumnElement[Any] = literal_column("'english'::regconfig")
_VECTORS = {"all": "search_vector", "title": "title_vector", "body": "body_vector"}
_FTS_COLUMNS = {"all": "", "title": "{name brand} : "}


@dataclass(frozen=True)
class Matcher:
    """The conditions of each tier; `tiers[t]` holds every product of tier t or above
    (tier 0, only for a query of several clauses, holds those that miss one clause)."""

    tiers: dict[int, ColumnElement[bool]]
    body_hint: ColumnElement[bool] | None  # implied by "tier 1 but not 2" (PostgreSQL)
    widened: ColumnElement[bool] | None = None  # tier 2 where a typo, completion... let it in
    walked: frozenset[int] = frozenset()  # tiers whose newest matches are found by walking ids
    parts: tuple[ColumnElement[bool], ...] = ()  # `anywhere` split apart, for facets (_parts)

    @property
    def anywhere(self) -> ColumnElement[bool]:
        """Every product that matches every clause (what filters, sorts and facets use)."""
        return self.tiers[1]


# -- the words of a clause, in each engine's query language -------------------------
def _pg(term: Term) -> str:
    if term.hyphenated:  # to_tsquery splits it as to_tsvector split the product's text
        return f"'{term.hyphenated}'"
    return " <-> ".join(f"'{w}'" for w in term.words)


def _fts(term: Term) -> str:
    return '"' + " ".join(term.words) + '"'


def _options(clause: ClausePlan, fuzzy: bool) -> list[Term]:
    """The clause's terms: as written (and synonyms), and with fuzzy, its typo corrections
    and the lexicon words the word being typed starts (never the engine's own prefix
    match, which stems the prefix and scans every word it starts)."""
    return [*clause.exact, *(clause.fuzzy if fuzzy else ())]


def _pg_clause(clause: ClausePlan, fuzzy: bool) -> str:
    return "(" + " | ".join(_pg(t) for t in _options(clause, fuzzy)) + ")"


def _fts_clause(clause: ClausePlan, fuzzy: bool) -> str:
    return "(" + " OR ".join(_fts(t) for t in _options(clause, fuzzy)) + ")"


def _pg_any(terms: tuple[Term, ...]) -> str:
    return " | ".join(f"({_pg(t)})" for t in terms)


def _fts_any(terms: tuple[Term, ...]) -> str:
    return " OR ".join(_fts(t) for t in terms)


def _pg_match(where: str, query: str) -> ColumnElement[bool]:
    vector: ColumnElement[Any] = literal_column(f"products.{_VECTORS[where]}")
    return vector.op("@@")(func.to_tsquery(_ENGLISH, query))


def _fts_match(where: str, query: str) -> ColumnElement[bool]:
    found = text("SELECT rowid FROM products_fts WHERE products_fts MATCH :m").bindparams(
        bindparam("m", f"{_FTS_COLUMNS[where]}({query})", unique=True)  # one per MATCH in a query
    )
    return Product.id.in_(found.columns(literal_column("rowid")))


# -- the tiers ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Engine:
    """How one backend writes a clause, matches it, and joins clauses."""

    clause_text: Callable[[ClausePlan, bool], str]
    any_text: Callable[[tuple[Term, ...]], str]  # any of the terms (what `-term` excludes)
    match: Callable[[str, str], ColumnElement[bool]]
    joiner: str
    postgres: bool

    def either(self, words: ColumnElement[bool], categories: frozenset[int]) -> ColumnElement[bool]:
        """The words matched, or the product in one of the categories.

        SQLite answers an OR of two indexed conditions by gathering both whole and sorting
        them (a MULTI-INDEX OR), even under ORDER BY id DESC LIMIT 21: 34 ms for "men"
        (10,000 matches at 100,000 products). Behind coalesce() it cannot see the OR, so it
        walks the newest products by id, which a category's many rows fill at once, or
        lets the clause's other words' index lead. PostgreSQL weighs the OR with real
        statistics and gets it plain.
        """
        found = or_(words, Product.category_id.in_(sorted(categories)))
        return found if self.postgres else func.coalesce(found, false()) == true()


_POSTGRES = _Engine(_pg_clause, _pg_any, _pg_match, " & ", postgres=True)
_SQLITE = _Engine(_fts_clause, _fts_any, _fts_match, " AND ", postgres=False)


def _tier(
    plan: SearchPlan, where: str, fuzzy: bool, engine: _Engine, outside: Collection[int] = ()
) -> ColumnElement[bool]:
    """Every clause: its words in `where`, or the product in a category it names (bar those
    in `outside`). A clause nothing can match (no word of it in the lexicon, no typo,
    category or completion) makes this false outright: asked anyway, PostgreSQL guessed a
    few hundred rows for an unknown word and walked every product for them (0.8 s at 1M).
    """
    if any(clause.unknown for clause in plan.clauses):
        return false()
    plain: list[str] = []
    steered: list[ColumnElement[bool]] = []
    for clause in plan.clauses:
        categories = clause.exact_categories | (clause.fuzzy_categories if fuzzy else frozenset())
        categories = categories.difference(outside)
        if not _options(clause, fuzzy):  # a category the word being typed starts
            if not categories:
                return false()
            steered.append(Product.category_id.in_(sorted(categories)))
        elif categories:
            words = engine.match(where, engine.clause_text(clause, fuzzy))
            steered.append(engine.either(words, categories))
        else:
            plain.append(engine.clause_text(clause, fuzzy))
    conditions = [engine.match(where, engine.joiner.join(plain))] if plain else []
    return and_(true(), *conditions, *steered)


def matcher(plan: SearchPlan, dialect: str) -> Matcher:
    """The tiers' conditions for `plan` on `dialect`, exclusions applied to each."""
    engine = _POSTGRES if dialect == "postgresql" else _SQLITE
    if not plan.clauses:
        return Matcher({tier: false() for tier in TIERS}, None)
    excluded: ColumnElement[bool] = true()
    if plan.excluded:
        excluded = not_(engine.match("all", engine.any_text(plan.excluded)))

    def tier(where: str, fuzzy: bool) -> ColumnElement[bool]:
        return and_(_tier(plan, where, fuzzy, engine), excluded)

    tiers = {3: tier("title", False)}
    tiers[2] = tier("title", True) if plan.has_fuzzy else tiers[3]
    tiers[1] = tier("all", plan.has_fuzzy)
    relaxed = plan.relaxed()
    if relaxed is not None:
        tiers[0] = and_(_tier(relaxed, "all", relaxed.has_fuzzy, engine), excluded)
    widened = _widened(plan, engine, tiers[2], excluded) if plan.has_fuzzy else None
    walked = walked_tiers(plan, relaxed) if engine.postgres else frozenset()
    body = _body_hint(plan) if engine.postgres else None
    return Matcher(tiers, body, widened, walked, _parts(plan, engine, excluded))


def _parts(plan: SearchPlan, engine: _Engine, excluded: ColumnElement[bool]) -> tuple[Any, ...]:
    """`anywhere` split where every clause names a category: the products of the categories
    all name, and the matches outside them (facets.py counts each apart, the first from an
    index alone: as one OR, PostgreSQL read 250,000 rows for "electronics" at 1M, 1.1 s)."""
    fuzzy = plan.has_fuzzy
    named = [c.exact_categories | (c.fuzzy_categories if fuzzy else set()) for c in plan.clauses]
    common = frozenset.intersection(*map(frozenset, named))
    if not common:  # (a clause naming a category is never unknown)
        return ()
    inside = Product.category_id.in_(sorted(common))
    rest = _tier(plan, "all", fuzzy, engine, outside=common)
    return and_(inside, excluded), and_(rest, not_(inside), excluded)


def _widened(
    plan: SearchPlan, engine: _Engine, tier2: ColumnElement[bool], excluded: ColumnElement[bool]
) -> ColumnElement[bool]:
    """Tier 2's products where some clause matched through a typo, a completion or a
    category they name: what tier 2 adds to tier 3, as a positive condition the text index
    answers (without it the engine walked every product backwards for the tier's rows).

    When one clause alone is widened, that is the tier with that clause's typos etc. in
    place of its words: one condition, which PostgreSQL estimates as it is. Written as
    "tier 2 AND a typo matched" it multiplied the two (the same words) and guessed 354 rows
    for "hedphones" where 18,460 match, then read them all for the 21 newest: 118 ms, not 1.
    """
    widened = [clause for clause in plan.clauses if clause.has_fuzzy]
    if len(widened) == 1:
        only = tuple(
            ClausePlan(exact=c.fuzzy, exact_categories=c.fuzzy_categories) if c.has_fuzzy else c
            for c in plan.clauses
        )
        return and_(_tier(SearchPlan(only), "title", False, engine), excluded)
    return and_(tier2, _fuzzy_hint(plan, engine))


def _fuzzy_hint(plan: SearchPlan, engine: _Engine) -> ColumnElement[bool]:
    """Some clause matched only through a typo, a completion or a category they name."""
    words: list[ColumnElement[bool]] = []
    categories: set[int] = set()
    for clause in plan.clauses:
        if clause.fuzzy:
            only = ClausePlan(exact=clause.fuzzy)
            words.append(engine.match("title", engine.clause_text(only, False)))
        categories |= clause.fuzzy_categories
    typed = or_(false(), *words)
    return engine.either(typed, frozenset(categories)) if categories else typed


def _body_hint(plan: SearchPlan) -> ColumnElement[bool]:
    """Some word of the query in the description but not the title: what tier 1 adds.

    PostgreSQL cannot estimate `all AND NOT title` (the vectors are correlated) and walked
    the table backwards when the tier was empty; this positive condition on body_vector
    (migration 0004) has real statistics and an index.
    """
    words = {
        word
        for clause in plan.clauses
        for term in (*clause.exact, *clause.fuzzy)
        for word in term.words
    }
    return _pg_match("body", " | ".join(f"'{w}'" for w in sorted(words)))
