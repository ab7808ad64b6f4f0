"""Text folding for the denylist: what a name or phrase *looks like*, not how it is encoded.

Evasion tricks this undoes: fullwidth and mathematical letters (NFKC), zero-width and other
invisible characters, diacritics, Cyrillic and Greek look-alike letters, small capitals, dotted
or spaced acronyms ("I.C.E.", "I C E"), camelCase run-ons ("BorderPatrol"), "&" for "and", and
digits standing in for letters inside a word ("1CE", "H5I").

The result is a list of *tokens* (lower-case words); matching is done on whole tokens and token
sequences, never substrings, so "Police", "Office" and "Rice County" do not contain "ice".
"""

from __future__ import annotations

import re
import unicodedata

#: Letters from other scripts that render like Latin ones (Unicode confusables, the ones that
#: matter for agency names). Lower-case keys: text is case-folded first.
CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ɡ": "g", "ց": "g", "ո": "n", "ս": "u",
    "ɩ": "i", "ı": "i", "ɪ": "i", "ʟ": "l", "ᴄ": "c", "ᴇ": "e", "ᴏ": "o", "ʀ": "r", "ʙ": "b",
    "ᴅ": "d", "ꜰ": "f", "ʜ": "h", "ᴊ": "j", "ᴋ": "k", "ᴍ": "m", "ɴ": "n", "ᴘ": "p", "ꜱ": "s",
    "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z", "ǝ": "e", "ɑ": "a",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ς": "s", "σ": "o", "ω": "w", "ζ": "z",
    "ϲ": "c", "ϳ": "j", "ϒ": "y",
    # Armenian / other look-alikes seen in spoofed names
    "օ": "o", "ɾ": "r", "ℓ": "l",
    # Cherokee capitals (case folding leaves them as they are)
    "Ꭺ": "a", "Ᏼ": "b", "Ꮯ": "c", "Ꭰ": "d", "Ꭼ": "e", "Ꮐ": "g", "Ꮋ": "h", "Ꭵ": "i",
    "Ꭻ": "j", "Ꮶ": "k", "Ꮮ": "l", "Ꮇ": "m", "Ꮻ": "o", "Ꮲ": "p", "Ꮢ": "r", "Ꮪ": "s",
    "Ꭲ": "t", "Ꮩ": "v", "Ꮤ": "w", "Ꮓ": "z",
    # Lisu
    "ꓮ": "a", "ꓐ": "b", "ꓚ": "c", "ꓓ": "d", "ꓰ": "e", "ꓝ": "f", "ꓖ": "g", "ꓧ": "h",
    "ꓲ": "i", "ꓙ": "j", "ꓗ": "k", "ꓡ": "l", "ꓟ": "m", "ꓠ": "n", "ꓳ": "o", "ꓑ": "p",
    "ꓣ": "r", "ꓢ": "s", "ꓔ": "t", "ꓴ": "u", "ꓦ": "v", "ꓪ": "w", "ꓫ": "x", "ꓬ": "y",
    "ꓜ": "z",
    # Coptic
    "ⲁ": "a", "ⲃ": "b", "ⲥ": "c", "ⲇ": "d", "ⲉ": "e", "ⲓ": "i", "ⲕ": "k", "ⲙ": "m",
    "ⲛ": "n", "ⲟ": "o", "ⲣ": "p", "ⲧ": "t", "ⲩ": "y", "ⲭ": "x",
}  # fmt: skip

#: Digits and symbols used for letters inside a word (only applied to tokens that mix letters
#: with them, so "287" and ORIs stay as they are).
LEET: dict[str, str] = {
    "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
    "@": "a", "$": "s", "€": "e",
}  # fmt: skip

#: characters that vanish: zero-width, joiners, soft hyphen, BOM, bidi controls, variation sel.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_LEET_WORD = re.compile(r"[a-z0-9@$€]+")
_PLAIN_WORD = re.compile(r"[a-z0-9]+")
#: words that carry no identity: "Immigration AND Customs Enforcement", "Office OF Field ..."
STOPWORDS = frozenset({"and", "of", "the", "for", "on", "a", "an", "n"})


#: Look-alikes that NFKC or case folding would turn into another letter first (lunate sigma
#: becomes a plain sigma, which reads as "o"), so they are mapped before either.
_EARLY: dict[str, str] = {"\u03f9": "C", "\u03f2": "c", "\u03a3": "E", "\u0405": "S"}


def fold(text: str) -> str:
    """NFKC, invisible characters removed, diacritics stripped, case-folded, look-alikes mapped."""
    text = "".join(_EARLY.get(ch, ch) for ch in text)
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    # camelCase run-ons split before case folding loses the boundary
    text = _CAMEL.sub(" ", text)
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    mapped = "".join(CONFUSABLES.get(ch, ch) for ch in stripped)
    return unicodedata.normalize("NFKC", mapped).replace("&", " and ").replace("+", " and ")


def _deleet(token: str) -> str:
    return "".join(LEET.get(ch, ch) for ch in token)


def tokens(text: str, *, leet: bool = False) -> list[str]:
    """The words of ``text`` after :func:`fold`, with acronyms written letter by letter joined
    ("I.C.E." and "I C E" give "ice") and stopwords dropped.

    With ``leet``, digits and ``@ $ €`` inside a word that also has letters are read as the
    letters they stand for ("1CE" gives "ice", "H$I" gives "hsi"); without it they are left
    alone (so "287g" stays) and the symbols separate words. Match against both readings.
    """
    folded = fold(text)
    words: list[str] = []
    for word in (_LEET_WORD if leet else _PLAIN_WORD).findall(folded):
        has_alpha = any(ch.isalpha() for ch in word)
        if leet and has_alpha and not word.isalpha():
            word = _deleet(word)
        elif leet:
            word = "".join(ch for ch in word if ch.isalnum())
            if not word:
                continue
        words.append(word)
    joined: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        if run:
            joined.append("".join(run) if len(run) > 1 else run[0])
            run = []
        if word:
            joined.append(word)
    return [w for w in joined if w not in STOPWORDS]


def readings(text: str) -> tuple[list[str], ...]:
    """The distinct token readings of ``text``: as written, and with digits read as letters."""
    plain = tokens(text)
    leet = tokens(text, leet=True)
    return (plain,) if leet == plain else (plain, leet)


def edit_distance_at_most_one(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by at most one insertion, deletion, substitution or
    swap of neighbours (a typo)."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    if la > lb:
        a, b = b, a
    # b is one longer: find the first difference and skip it in b
    for i in range(len(a)):
        if a[i] != b[i]:
            return a[i:] == b[i + 1 :]
    return True


def compact(text: str) -> str:
    """All tokens run together: "U.S. Border-Patrol" gives "usborderpatrol" (name comparison)."""
    return "".join(tokens(text))


_LETTERS = re.compile(r"[^\W\d_]+")


def mixed_script_words(text: str) -> list[str]:
    """Words that mix letters of different scripts ("Oаkland" with a Cyrillic "а"): a real
    agency or officer does not spell so; a look-alike spoof does (Unicode UTS #39)."""
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    found = []
    for word in _LETTERS.findall(text):
        scripts = {unicodedata.name(ch, "UNKNOWN").split()[0] for ch in word}
        if len(scripts) > 1:
            found.append(word)
    return found
