"""Words as search sees them: splitting, stems, stop words and synonyms (both backends).

One splitting rule for what is indexed (the lexicon, lexicon.py) and what is asked (q,
search_syntax.py), so a word typed is compared with the words stored. Stems are
singulars (`stem`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

# Letters and digits of any script; everything else (spaces, punctuation, _) separates.
_SEPARATORS = re.compile(r"[\W_]+")
MAX_WORD = 40  # longer "words" are noise (pasted ids, hashes) and are not indexed
# PostgreSQL's tsearch_data/english.stop: dropped from queries on both backends, as
# to_tsquery('english', ...) drops them, so SQLite asks for the same words.
_STOP_FILE = (
    "i me my myself we our ours ourselves you your yours yourself yourselves he him his "
    "himself she her hers herself it its itself they them their theirs themselves what "
    "which who whom this that these those am is are was were be been being have has had "
    "having do does did doing a an the and but if or because as until while of at by for "
    "with about against between into through during before after above below to from up "
    "down in out on off over under again further then once here there when where why how "
    "all any both each few more most other some such no nor not only own same so than too "
    "very s t can will just don should now"
)
STOPWORDS = frozenset(_STOP_FILE.split())
# Words a shopper uses for one another (each group's words are alternatives of each other;
# a member of two words is a phrase). In config rather than a table: a change is reviewed
# and deployed like code, and both backends read the same list (docs/decisions.md).
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("tv", "television", "telly"),
    ("phone", "mobile", "smartphone", "cellphone"),
    ("laptop", "notebook"),
    ("earphone", "earbud"),
    ("headphone", "headset"),
    ("kurta", "kurti"),
    ("tshirt", "tee", "t shirt"),
    ("sofa", "couch"),
    ("wardrobe", "almirah", "cupboard"),
    ("fridge", "refrigerator"),
    ("sneaker", "trainer"),
    ("watch", "wristwatch"),
    ("perfume", "fragrance"),
    ("racket", "racquet"),
    ("kajal", "kohl"),
    ("mixie", "mixer"),
    ("sunscreen", "sunblock"),
    ("slipper", "chappal", "flip flop"),
    ("trouser", "pant", "chino"),
    ("jogging", "running"),
    ("novel", "fiction"),
    ("rc", "remote control"),
    ("stove", "cooktop"),
    ("specs", "spectacles", "eyeglasses"),
    ("purse", "wallet"),
    ("jeans", "denim"),
    ("football", "soccer"),
    ("teddy", "plush"),
    # British and American spellings
    ("moisturiser", "moisturizer"),
    ("colour", "color"),
    ("grey", "gray"),
)


def normalise(text: str) -> str:
    """NFKC and lower case: full-width and compatibility forms become plain letters."""
    return unicodedata.normalize("NFKC", text).lower()


def words_of(text: str) -> list[str]:
    """The words of `text` in order, lower case, each at most MAX_WORD characters long."""
    return [w for w in _SEPARATORS.split(normalise(text)) if w and len(w) <= MAX_WORD]


def count_words(texts: Iterable[str]) -> Counter[str]:
    """How many of `texts` hold each word (a word counts once per text)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(set(words_of(text)))
    return counts


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The word's singular, by English plural endings: phones, watches, batteries, tvs.

    Only compared with itself (the lexicon's stems, category names, synonyms), so it need
    not match PostgreSQL's dictionary; the engines stem the words they match on their own.
    """
    if len(word) <= 3 or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "zes", "sses")):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word


def synonyms(word: str) -> tuple[tuple[str, ...], ...]:
    """The other members of `word`'s synonym group (compared by stem, a plural's too)."""
    found = _SYNONYMS.get(stem(word))
    if found is None and word.endswith("s"):
        found = _SYNONYMS.get(stem(word[:-1]))  # "tvs" (a short word keeps its s)
    return found or ()


def _synonym_index() -> dict[str, tuple[tuple[str, ...], ...]]:
    index: dict[str, tuple[tuple[str, ...], ...]] = {}
    for group in SYNONYM_GROUPS:
        members = [tuple(member.split()) for member in group]
        for member in members:
            if len(member) == 1:
                index[stem(member[0])] = tuple(other for other in members if other != member)
    return index


_SYNONYMS = _synonym_index()


def fold(word: str) -> str:
    """Without accents, for edit distances: lakmé and lakme are the same word typed."""
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
