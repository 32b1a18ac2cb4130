"""Reading `q`: clauses, phrases, exclusions, `or`, stop words; words, stems, synonyms."""

from __future__ import annotations

from flipkart_api.catalog.lexicon import osa_distance, similarity, typo_budget
from flipkart_api.catalog.search_fallbacks import shortened
from flipkart_api.catalog.search_syntax import Clause, Term, parse
from flipkart_api.catalog.search_words import fold, stem, synonyms, words_of


def words(q: str) -> list[list[tuple[str, ...]]]:
    return [[t.words for t in c.terms] for c in parse(q).clauses]


def test_plain_words_are_clauses_and_stop_words_go() -> None:
    assert words("Shoes for MEN") == [[("shoes",)], [("men",)]]
    assert parse("the of and").empty


def test_phrases_exclusions_and_or() -> None:
    parsed = parse('"mixer grinder" -running puma or adidas')
    assert parsed.clauses == (
        Clause((Term(("mixer", "grinder")),)),
        Clause((Term(("puma",)), Term(("adidas",)))),
    )
    assert parsed.excluded == (Term(("running",)),)
    assert parsed.typing == "adidas"
    assert words('"unclosed phrase') == [[("unclosed", "phrase")]]
    assert words('"whispers of the river"') == [[("whispers", "of", "the", "river")]]


def test_a_trailing_or_and_engine_syntax_are_nothing() -> None:
    assert words("phone or") == [[("phone",)]]
    assert words("or or") == []
    for q in ("*", "NEAR(", "{name}:", "'", "\\", "!!!", "-", "--", "(", "<->", "&", "|"):
        clauses = words(q)
        assert all(w.isalnum() for c in clauses for t in c for w in t), (q, clauses)


def test_hyphens_and_apostrophes_join_parts() -> None:
    assert parse("wh-ch520").clauses == (Clause((Term(("wh", "ch520"), "wh-ch520"),)),)
    assert parse("18-55").clauses[0].terms[0].hyphenated == "18-55"
    assert words("levi's") == [[("levi", "s")]]
    assert parse("-refurbished").excluded == (Term(("refurbished",)),)


def test_the_word_being_typed_is_the_last_bare_word() -> None:
    assert parse("samsung gal").typing == "gal"
    assert parse('samsung "galaxy"').typing is None
    assert parse("samsung -refurb").typing is None


def test_clauses_are_bounded() -> None:
    assert len(parse(" ".join(f"w{i}" for i in range(50))).clauses) == 8
    assert len(parse(" or ".join(f"w{i}" for i in range(50))).clauses[0].terms) == 4


def test_words_stems_and_synonyms() -> None:
    full_width = "".join(chr(0xFF00 + ord(c) - 0x20) for c in "SAMSUNG")  # NFKC: SAMSUNG
    assert words_of(f"L'Oréal Paris, {full_width}_x") == ["l", "oréal", "paris", "samsung", "x"]
    assert stem("phones") == stem("phone") == "phone"
    singulars = ("watch", "battery", "fitness", "tvs", "dress")  # 3 letters: kept
    assert tuple(map(stem, ("watches", "batteries", "fitness", "tvs", "dress"))) == singulars
    assert ("television",) in synonyms("tv")
    assert ("television",) in synonyms("tvs")
    assert ("t", "shirt") in synonyms("tshirt")
    assert synonyms("samsung") == ()
    assert fold("lakmé") == "lakme"


def test_typo_budgets_and_trigram_similarity() -> None:
    assert [typo_budget(w) for w in ("tvs", "sony", "lenvo", "samsng", "televsion")] == [
        0, 1, 1, 1, 2,
    ]  # fmt: skip
    assert typo_budget("s24x") == 0  # numbers are never respelt
    assert similarity("samsng", "samsung") == 0.5  # pg_trgm's own: 5 shared of 10
    assert similarity("sony", "sony") == 1.0


def test_shortened_drops_clauses_from_the_end() -> None:
    assert shortened('iphone 15 "128 gb" -refurbished') == [
        "iphone 15 -refurbished",
        "iphone -refurbished",
    ]
    assert shortened("samsung") == []


def test_edit_distances_count_a_swap_once() -> None:
    cases = [("samsng", "samsung", 1), ("iphnoe", "iphone", 1), ("lgeo", "lego", 1),
             ("labtob", "laptop", 2), ("", "abc", 3), ("abc", "abc", 0), ("ca", "abc", 3),
             ("sony", "sonu", 1), ("kitten", "sitting", 3)]  # fmt: skip
    for a, b, want in cases:
        assert osa_distance(a, b) == want == osa_distance(b, a), (a, b)
