"""One page of products: the list query, what `q` finds (and shows when it finds nothing),
the facet counts, and the rows as the API's products."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from ..pagination import encode_cursor
from .facets import facet_counts
from .listing import build_query, price_range_probe, scopes_with_few
from .models import Category, discount_percent
from .schemas import ProductCategory, ProductOut, ProductPage, ProductQuery
from .search import Matcher, matcher
from .search_fallbacks import respelt, shortened
from .search_plan import CategoryWords, SearchPlan, plan
from .search_syntax import parse


def load_page(sess: Session, query: ProductQuery) -> ProductPage:
    """The page `query` asks for: its products, the next cursor, facets if asked."""
    category_ids = descendant_ids(sess, query.category) if query.category else None
    dialect = sess.get_bind().dialect.name
    found = search_matcher(sess, query.q, dialect) if query.q else None
    rows = _page_rows(sess, query, dialect, category_ids, found)
    shown = None
    if query.q and not rows:  # nothing, or a later page: what did the first page show?
        corrected = _respelt_if_nothing(sess, query, dialect, category_ids, found)
        if corrected is not None:
            shown, found, rows = corrected
    page, more = rows[: query.limit], len(rows) > query.limit
    next_cursor = None
    if more and page:
        last = page[-1]
        next_cursor = encode_cursor(query.effective_sort, last.sort_key, last.id)
    facets = facet_counts(sess, query, category_ids, found) if query.facet_names else None
    return ProductPage(
        items=[_product_from_row(row) for row in page],
        next_cursor=next_cursor,
        facets=facets,
        showing_results_for=shown,
    )


def search_matcher(sess: Session, q: str, dialect: str) -> Matcher:
    """What `q` finds, as SQL: parsed, looked up in the lexicon and the category names."""
    return matcher(_plan(sess, q), dialect)


def _plan(sess: Session, q: str) -> SearchPlan:
    return plan(sess, parse(q), CategoryWords.load(sess))


def _respelt_if_nothing(
    sess: Session,
    query: ProductQuery,
    dialect: str,
    category_ids: list[int] | None,
    found: Matcher | None,
) -> tuple[str, Matcher, list[Row[Any]]] | None:
    """When q finds nothing at all: the first of q respelt, then q (respelt) shortened by
    its last words, that finds something, what it finds, and the page's rows of that.

    Decided without the cursor, so every page of one q answers for the same query. On the
    first page the candidates are asked for the page itself, which is then not read again.
    """
    first = query.model_copy(update={"cursor": None, "limit": 1})
    if query.cursor and _page_rows(sess, first, dialect, category_ids, found):
        return None  # q finds something: this is just a page past its end
    probe = first if query.cursor else query
    q = query.q or ""
    other = respelt(sess, q)
    for candidate in ([other] if other else []) + shortened(other or q):
        planned = _plan(sess, candidate)
        if all(clause.unknown for clause in planned.clauses):
            continue  # nothing can match it: no need to ask
        corrected = matcher(planned, dialect)
        if rows := _page_rows(sess, probe, dialect, category_ids, corrected):
            if query.cursor:  # that was one row of the first page: now the page asked for
                rows = _page_rows(sess, query, dialect, category_ids, corrected)
            return candidate, corrected, rows
    return None


def _page_rows(
    sess: Session,
    query: ProductQuery,
    dialect: str,
    category_ids: list[int] | None,
    found: Matcher | None,
) -> list[Row[Any]]:
    few: list[int] = []
    if (probe := price_range_probe(query, dialect, category_ids)) is not None:
        held: dict[int, int] = dict(sess.execute(probe).all())
        few = scopes_with_few(held, category_ids)
    rows: list[Row[Any]] = []
    for stmt in build_query(query, dialect, category_ids, few=few, found=found):
        rows += sess.execute(stmt).all()
        if len(rows) > query.limit:  # a full page and a sign of the next: lower tiers wait
            break
    return rows[: query.limit + 1]


def _product_from_row(row: Row[Any]) -> ProductOut:
    """A page row (page_rows.PAGE_COLUMNS) as the API's product."""
    p = row._mapping
    return ProductOut(
        id=p["id"],
        sku=p["sku"],
        slug=p["slug"],
        name=p["name"],
        description=p["description"],
        brand=p["brand"],
        category=ProductCategory(
            id=p["category_id"], slug=p["category_slug"], name=p["category_name"]
        ),
        price=p["price"],
        mrp=p["mrp"],
        discount_percent=discount_percent(p["price"], p["mrp"]),
        currency=p["currency"],
        stock=p["stock"],
        in_stock=p["stock"] > 0,
        rating=p["rating"],
        images=p["images"],
        created_at=p["created_at"],
        updated_at=p["updated_at"],
    )


def descendant_ids(sess: Session, ref: str) -> list[int]:
    """The category with this id (digits) or slug and all below it; 422 for an unknown one."""
    # Compared in Python, so an id of any length is just "no such category", never an overflow.
    wanted_id = int(ref) if ref.isdigit() else None
    # (id, parent, slug) rows, not ORM objects: this runs for every filtered list page
    rows = sess.execute(
        select(Category.id, Category.parent_id, Category.slug).order_by(Category.id)
    )
    root_id = None
    children: dict[int | None, list[int]] = {}
    for category_id, parent_id, category_slug in rows:
        children.setdefault(parent_id, []).append(category_id)
        if (category_id == wanted_id) if wanted_id is not None else (category_slug == ref):
            root_id = category_id
    if root_id is None:
        raise InvalidInput("category", "no such category")
    found, frontier = [root_id], [root_id]
    while frontier:
        frontier = [child for parent in frontier for child in children.get(parent, [])]
        found.extend(frontier)
    return found
