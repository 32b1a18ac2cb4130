"""The lexicon: the catalog's words, kept in step with its writes, and looked up by typo.

Every product and category write adds its words (mapper events in lexicon_events.py, so
no write path can forget; the seed adds a batch's words in one statement). A misspelt word
is looked up by trigram, the engines' own index (pg_trgm's `%` on PostgreSQL, an FTS5
trigram table on SQLite, both over the same padded trigrams), and the candidates are ranked
by edit distance (Damerau-Levenshtein, transpositions count once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, func, literal, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import SearchBrand, SearchTerm
from .search_words import fold, stem, words_of

TERMS = cast(Table, SearchTerm.__table__)
BRANDS = cast(Table, SearchBrand.__table__)
CANDIDATES = 64  # trigram neighbours read per misspelt word, before edit distances
# pg_trgm's similarity() floor for a neighbour: a 1-edit typo of a 4-letter word shares
# about a quarter of its padded trigrams, "labtob" a sixth of "laptop"'s.
SIMILARITY = 0.15
_END = "\U0010ffff"  # sorts after every character: [p, p + _END) holds the words starting with p


def typo_budget(word: str) -> int:
    """Edits forgiven in a word: none below 4 letters or in numbers, 1 up to 6, then 2."""
    if len(word) < 4 or any(ch.isdigit() for ch in word):
        return 0
    return 1 if len(word) <= 6 else 2


@dataclass(frozen=True)
class Neighbour:
    """A lexicon word near a misspelt one."""

    term: str
    distance: int
    weight: int


def add_words(conn: Connection | Session, counts: Counter[str]) -> None:
    """Add these words (with how many texts held each) to the lexicon, or raise their weight."""
    rows = [{"term": t, "stem": stem(t), "folded": fold(t), "weight": counts[t]} for t in counts]
    _add_weights(conn, TERMS, rows)


def add_brands(conn: Connection | Session, counts: Counter[str]) -> None:
    """Add these brands (with how many products bring each) to the brand list."""
    rows = [{"brand": b, "words": brand_words(b), "weight": n} for b, n in counts.items() if b]
    _add_weights(conn, BRANDS, rows)


def _add_weights(conn: Connection | Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert the rows, or add their weight to the rows already there (one statement)."""
    if not rows:
        return
    key = table.primary_key.columns.values()[0]
    dialect = conn.get_bind().dialect.name if isinstance(conn, Session) else conn.dialect.name
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[key], set_={"weight": table.c.weight + stmt.excluded.weight}
    )
    # In key order: concurrent writers lock the rows they share in the same order.
    conn.execute(stmt, sorted(rows, key=lambda row: str(row[key.name])))


def brand_words(brand: str) -> str:
    """A brand's words, accents folded, one space apart: what a prefix is looked for in."""
    return " ".join(fold(word) for word in words_of(brand))


def brands_with_word(sess: Session, prefix: str, limit: int) -> list[str]:
    """Brands with a word that starts with `prefix` (accents folded), the biggest first."""
    spaced = literal(" ") + BRANDS.c.words  # the table is small: a scan costs little
    return list(
        sess.scalars(
            select(BRANDS.c.brand)
            .where(spaced.like(literal(f"% {fold(prefix)}%")))
            .order_by(BRANDS.c.weight.desc(), BRANDS.c.brand)
            .limit(limit)
        )
    )


def known(sess: Session, words: Iterable[str]) -> dict[str, int]:
    """The words among `words` the lexicon holds, as written or by stem (phones: phone),
    each with at most how many products hold it: the weights of its stem's words, added
    up (a text's words are counted once each, so "phone" and "phones" may both count it).
    """
    wanted = sorted(set(words))
    if not wanted:
        return {}
    stems = {w: stem(w) for w in wanted}
    rows = sess.execute(
        select(TERMS.c.term, TERMS.c.stem, TERMS.c.weight).where(
            or_(TERMS.c.term.in_(wanted), TERMS.c.stem.in_(sorted(set(stems.values()))))
        )
    )
    by_term: dict[str, int] = {}
    by_stem: Counter[str] = Counter()
    for term, term_stem, weight in rows:
        by_term[term] = weight
        by_stem[term_stem] += weight
    return {
        w: max(by_stem[stems[w]], by_term.get(w, 0))
        for w in wanted
        if w in by_term or stems[w] in by_stem
    }


def neighbours(sess: Session, word: str, budget: int) -> list[Neighbour]:
    """Lexicon words within `budget` edits of `word`, nearest and most used first.

    Candidates share at least SIMILARITY of their padded trigrams with the word (pg_trgm's
    similarity, computed here too so both backends take the same ones); accents are folded
    away first, so lakme finds lakmé at distance 0 and loreal finds oréal at 1.
    """
    folded = fold(word)
    swapped = _transposed(folded) if budget else set()
    candidates = {*_trigram_neighbours(sess, folded), *_held(sess, swapped)}
    found = []
    for term, weight in candidates:
        folded_term = fold(term)
        if term == word:
            continue
        if folded_term not in swapped and similarity(folded, folded_term) < SIMILARITY:
            continue
        distance = osa_distance(folded, folded_term)
        if distance <= budget:
            found.append(Neighbour(term, distance, weight))
    # A typo rarely hits the first letter: on equal distance, same first letter first.
    return sorted(found, key=lambda n: (n.distance, n.term[0] != word[0], -n.weight, n.term))


def starting_with(sess: Session, prefix: str, limit: int) -> list[tuple[str, int]]:
    """(word, weight) of the lexicon words that start with `prefix`, most used first."""
    rows = sess.execute(
        select(TERMS.c.term, TERMS.c.weight)
        .where(TERMS.c.term >= prefix, TERMS.c.term < prefix + _END)
        .order_by(TERMS.c.weight.desc(), TERMS.c.term)
        .limit(limit)
    )
    return [(term, weight) for term, weight in rows]


def _transposed(word: str) -> set[str]:
    """The word with two neighbouring letters swapped, each way it can be (lgeo: lego).

    A swap in a short word breaks most of its trigrams ("lgeo" and "lego" share one of
    nine), so trigrams alone miss the commonest typo; these are looked up as written.
    """
    return {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)} - {word}


def _held(sess: Session, folded: set[str]) -> Sequence[Any]:
    """(term, weight) of the lexicon words whose accentless form is one of `folded`."""
    if not folded:
        return []
    return sess.execute(
        select(TERMS.c.term, TERMS.c.weight).where(TERMS.c.folded.in_(sorted(folded)))
    ).all()


# pg_trgm's `%` uses this setting; set for the transaction, once (session.info marks it).
_SET_THRESHOLD = select(func.set_config("pg_trgm.similarity_threshold", str(SIMILARITY), True))
_THRESHOLD = "flipkart_trgm_threshold_set"


def osa_distance(a: str, b: str) -> int:
    """Edits from a to b: insertions, deletions, substitutions, swaps of neighbours (OSA).

    Written here rather than taken from rapidfuzz: its wheel is 12 MB, over the image's
    budget, for a few dozen comparisons of words of at most 40 letters per search.
    """
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def padded_trigrams(word: str) -> set[str]:
    """pg_trgm's trigrams of one word: two spaces before it and one after."""
    padded = f"  {word} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def similarity(a: str, b: str) -> float:
    """pg_trgm's similarity(): shared trigrams over all the trigrams of the two words."""
    ours, theirs = padded_trigrams(a), padded_trigrams(b)
    return len(ours & theirs) / len(ours | theirs)


def _trigram_neighbours(sess: Session, folded: str) -> Sequence[Any]:
    """(term, weight) of up to CANDIDATES words whose accentless form shares trigrams."""
    low, high = len(folded) - 2, len(folded) + 2
    if sess.get_bind().dialect.name == "postgresql":
        if sess.info.get(_THRESHOLD) is not sess.get_transaction():  # once per transaction
            sess.execute(_SET_THRESHOLD)
            sess.info[_THRESHOLD] = sess.get_transaction()
        return sess.execute(
            text(
                "SELECT term, weight FROM search_terms WHERE folded % :w "
                "AND length(folded) BETWEEN :low AND :high "
                "ORDER BY similarity(folded, :w) DESC, weight DESC LIMIT :n"
            ),
            {"w": folded, "low": low, "high": high, "n": CANDIDATES},
        ).all()
    grams = sorted(padded_trigrams(folded))
    match = " OR ".join('"' + gram.replace('"', '""') + '"' for gram in grams)
    return sess.execute(
        text(
            "SELECT t.term, t.weight FROM search_terms_trigrams g "
            "JOIN search_terms t ON t.rowid = g.rowid "
            "WHERE search_terms_trigrams MATCH :m AND length(t.folded) BETWEEN :low AND :high "
            "ORDER BY g.rank, t.weight DESC LIMIT :n"
        ),
        {"m": match, "low": low, "high": high, "n": CANDIDATES},
    ).all()
