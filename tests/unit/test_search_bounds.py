"""At most how many products a search can find, from the lexicon's weights (search_bounds)."""

from __future__ import annotations

from flipkart_api.catalog.search_bounds import WALK_ABOVE, at_most, most, walked_tiers
from flipkart_api.catalog.search_plan import ClausePlan, SearchPlan
from flipkart_api.catalog.search_syntax import Term

HELD = {"mixer": 14_000, "grinder": 15_000, "titan": 900, "shirt": 16_000}


def test_a_clause_holds_at_most_its_terms_together() -> None:
    assert at_most([Term(("mixer",)), Term(("grinder",))], HELD) == 29_000  # either will do
    assert at_most([Term(("mixr",))], HELD) == 0  # not in the lexicon: in no product
    assert at_most([Term(("t", "shirt"), "t-shirt")], HELD) == 16_000  # its rarest known word
    assert at_most([Term(("lorem", "ipsum"))], HELD) is None  # no word known: no bound


def test_a_plan_holds_at_most_its_rarest_clause() -> None:
    plan = SearchPlan(
        (ClausePlan((Term(("titan",)),), most=900, most_fuzzy=5_000), ClausePlan((), most=None))
    )
    assert (most(plan, False), most(plan, True)) == (900, 5_000)
    assert most(SearchPlan((ClausePlan((), most=None),)), False) is None


def test_only_words_that_must_meet_and_may_be_common_are_walked() -> None:
    def plan(*bounds: int) -> SearchPlan:
        clauses = (ClausePlan((Term((str(b),)),), most=b, most_fuzzy=b) for b in bounds)
        return SearchPlan(tuple(clauses))

    common, rare = WALK_ABOVE + 1, WALK_ABOVE
    assert walked_tiers(plan(common, common), None) == {3, 2, 1}
    assert walked_tiers(plan(rare, common), None) == frozenset()  # the rare word leads
    # one word: PostgreSQL estimates it as it is, except tier 1 (ANDed with its body hint)
    assert walked_tiers(plan(common), None) == {1}
    relaxed = plan(common)
    assert walked_tiers(plan(common, common), relaxed) == {3, 2, 1, 0}
