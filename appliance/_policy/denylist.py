"""The built-in denylist: ICE, CBP and their components, and immigration purposes.

California law forbids using ALPR data, money or staff for immigration enforcement, including
answering for another agency that acts for it (Gov. Code 7284.6; Vallejo 426.6 and 426.8(c) name
ICE and CBP). This list is code, not configuration: nothing in a site file can remove an entry,
and the registry refuses an agency that hits it (a config error naming the line).

It is applied to every agency name involved (requester, each on-behalf-of agency, each
recipient), to ORIs, to e-mail and network domains, and to purpose and reason text. Matching is
on whole words and phrases after :mod:`.normalize` folding, never on substrings: "Police",
"Office of Emergency Services" and "Rice County" do not match "ICE".
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .normalize import edit_distance_at_most_one, fold, readings, tokens

STATUTE = "Gov. Code 7284.6"


@dataclass(frozen=True)
class Hit:
    """One denylist match: which entry (``label``), on what it matched (``term``), and where."""

    label: str
    term: str
    where: str
    value: str

    def matched(self) -> str:
        return f"denylist:{self.where}:{self.label}"

    def reason(self) -> str:
        return (
            f"{self.where} {self.value!r} matches the immigration-enforcement denylist "
            f"({self.label}: {self.term!r}); California law forbids sharing for it ({STATUTE})"
        )


# -- the entries -------------------------------------------------------------------------------
# Each entry: label -> phrases. A phrase is matched as a sequence of whole tokens after folding
# (stopwords like "and"/"of" dropped, so "Customs and Border Protection" and "Customs Border
# Protection" are the same phrase).

_ICE = "ICE (U.S. Immigration and Customs Enforcement)"
_ERO = "ICE ERO (Enforcement and Removal Operations)"
_HSI = "HSI (Homeland Security Investigations, ICE)"
_CBP = "CBP (U.S. Customs and Border Protection)"
_USBP = "U.S. Border Patrol (CBP)"
_OFO = "CBP OFO (Office of Field Operations)"
_AMO = "CBP AMO (Air and Marine Operations)"
_DHS = "DHS (Department of Homeland Security)"
_IA = "DHS I&A (Office of Intelligence and Analysis)"
_USCIS = "USCIS (U.S. Citizenship and Immigration Services)"
_EOIR = "EOIR (immigration courts)"
_287G = "287(g) immigration task force"
_PURPOSE = "immigration enforcement purpose"

AGENCY_PHRASES: dict[str, tuple[str, ...]] = {
    _ICE: (
        "ice", "usice", "dhsice", "immigration customs enforcement",
        "immigrations customs enforcement", "immigration custom enforcement",
        "immigration customs enforcment", "ice agent", "ice agents", "ice officer",
    ),
    _ERO: (
        "ero", "iceero", "enforcement removal operations", "enforcement removal operation",
        "enforcement removal", "detention removal operations", "ice fugitive operations",
        "fugitive operations team", "national fugitive operations program",
    ),
    _HSI: (
        "hsi", "icehsi", "dhshsi", "homeland security investigations",
        "homeland security investigation", "homeland security task force", "hstf",
    ),
    _CBP: (
        "cbp", "uscbp", "dhscbp", "customs border protection", "customs border patrol",
        "customs", "us customs service", "customs service", "tecs", "cbp one", "aduanas",
        "aduana", "aduanas proteccion fronteriza", "proteccion fronteriza",
    ),
    _USBP: (
        "usbp", "borderpatrol", "border patrol", "bortac", "borstar", "border patrol agent",
        "patrulla fronteriza", "migra",
        "border patrol sector", "border agent", "border agents",
    ),
    _OFO: ("ofo", "cbpofo", "office field operations"),
    _AMO: ("amo", "amoc", "cbpamo", "air marine operations", "air marine operations center"),
    _DHS: (
        "dhs", "usdhs", "department homeland security", "homeland security",
        "dept homeland security", "us department homeland security",
    ),
    _IA: ("office intelligence analysis", "dhsia", "dhsoia", "dhs ia"),
    _USCIS: (
        "uscis", "citizenship immigration services", "immigration naturalization service",
        "immigration naturalization",
    ),
    _EOIR: ("eoir", "executive office immigration review", "immigration court",
            "immigration judge"),
    _287G: (
        "287 g", "287g", "287 g task force", "287g program", "section 287", "ina 287",
        "delegated immigration authority", "secure communities", "criminal alien program",
    ),
}  # fmt: skip

PURPOSE_PHRASES: dict[str, tuple[str, ...]] = {
    _PURPOSE: (
        "immigration", "immigrations", "immigrant", "immigrants", "immigrate", "immigrated",
        "migrant", "migrants", "inmigracion", "inmigrante",
        "inmigrantes", "migra", "la migra", "deportation", "deportations", "deport", "deports",
        "deported", "deporting", "deportable", "deportee", "deportees", "deportacion",
        "self deport", "removal proceedings", "removal proceeding", "removal order",
        "order removal", "final order removal", "removable alien", "is removable",
        "removability", "deemed removable", "visa overstay",
        "visa overstays", "overstay", "overstays", "overstayed", "visa status",
        "visa violation", "visa violations", "expired visa", "illegal alien", "illegal aliens",
        "criminal alien", "criminal aliens", "alien", "aliens", "illegal immigrant",
        "illegal immigrants", "illegals", "undocumented", "unlawfully present",
        "unlawful presence", "illegal entry", "illegal reentry", "unlawful reentry",
        "border enforcement", "illegal border crossing", "civil immigration",
        "immigration detainer", "i 247", "i247", "i 200", "i 205", "naturalization",
        "green card", "citizenship status", "immigration status", "legal status",
        "residency status", "asylum", "asylee", "refugee status", "daca", "tps holder",
        "estatus migratorio", "situacion migratoria", "deportar", "indocumentado",
        "indocumentados",
        "sanctuary violation", "8 usc 1325", "8 usc 1326", "8 usc 1357",
    ),
}  # fmt: skip

#: Long words whose one-letter typos ("imigration", "deportaton") are matched too. Words with
#: ordinary neighbours ("customs"/"custom") are left out.
FUZZY_WORDS: dict[str, str] = {
    "immigration": _PURPOSE, "immigrations": _PURPOSE, "immigrant": _PURPOSE,
    "immigrants": _PURPOSE, "deportation": _PURPOSE, "deportable": _PURPOSE,
    "naturalization": _USCIS, "undocumented": _PURPOSE, "homeland": _DHS,
    "overstayed": _PURPOSE,
}  # fmt: skip

#: Short acronyms that are combined ("ICEERO", "US ICE" written as one run of letters).
_ACRONYMS: dict[str, str] = {
    "ice": _ICE, "ero": _ERO, "hsi": _HSI, "cbp": _CBP, "usbp": _USBP, "ofo": _OFO,
    "amo": _AMO, "dhs": _DHS, "uscis": _USCIS,
}  # fmt: skip

#: DNS names of ICE, CBP and DHS; a host equal to one or under one is denied.
DOMAINS: dict[str, str] = {
    "ice.dhs.gov": _ICE, "ice.gov": _ICE, "iceagents.gov": _ICE, "hsi.dhs.gov": _HSI,
    "cbp.dhs.gov": _CBP, "cbp.gov": _CBP, "customs.gov": _CBP, "customs.treas.gov": _CBP,
    "usbp.gov": _USBP, "dhs.gov": _DHS, "hq.dhs.gov": _DHS, "uscis.gov": _USCIS,
    "uscis.dhs.gov": _USCIS, "eoir.gov": _EOIR, "justice.gov/eoir": _EOIR,
    "ins.usdoj.gov": _USCIS, "immigration.gov": _PURPOSE, "e-verify.gov": _USCIS,
    "dhs.us": _DHS, "ice.us": _ICE, "cbp.us": _CBP,
}  # fmt: skip

#: ORIs: the ICE Law Enforcement Support Center (the destination of NCIC immigration alien
#: queries) and agency codes in positions 3-5 of a federal ORI used by DHS immigration offices
#: (legacy INS, ICE, CBP, HSI ...). Federal field offices carry the state code of their
#: location, so a CA prefix alone does not make an ORI local: these are checked first.
ORI_EXACT: dict[str, str] = {"VTINS07S0": _ICE}
ORI_AGENCY_CODES: dict[str, str] = {
    "INS": _ICE, "ICE": _ICE, "ERO": _ERO, "HSI": _HSI, "CBP": _CBP, "USC": _CBP,
    "BPA": _USBP, "USB": _USBP, "OFO": _OFO, "AMO": _AMO, "DHS": _DHS, "CIS": _USCIS,
}  # fmt: skip
#: Nlets line ORIs: "TC" is TECS (CBP's system).
ORI_LINE_PREFIXES: dict[str, str] = {"TC": _CBP}


def _build() -> tuple[dict[tuple[str, ...], str], dict[str, str]]:
    phrases: dict[tuple[str, ...], str] = {}
    compacts: dict[str, str] = {}
    for table in (AGENCY_PHRASES, PURPOSE_PHRASES):
        for label, items in table.items():
            for item in items:
                words = tuple(tokens(item))
                if words:
                    phrases.setdefault(words, label)
                    compacts.setdefault("".join(words), label)
    # Acronyms run together or prefixed: "ICEERO", "USICE", "DHS-HSI" written as one word.
    for a, label in _ACRONYMS.items():
        for prefix in ("us", "dhs", "usdhs"):
            compacts.setdefault(prefix + a, label)
        for b in _ACRONYMS:
            if a != b:
                compacts.setdefault(a + b, label)
    return phrases, compacts


_PHRASES, _COMPACTS = _build()
_MAX_PHRASE = max(len(p) for p in _PHRASES)
ORI_PATTERN = re.compile(r"[A-Z]{2}[A-Z0-9]{7}")


def version() -> str:
    """A hash of every entry: part of the policy version recorded with each decision."""
    digest = hashlib.sha256()
    for table in (AGENCY_PHRASES, PURPOSE_PHRASES, FUZZY_WORDS, DOMAINS, ORI_EXACT,
                  ORI_AGENCY_CODES, ORI_LINE_PREFIXES):
        digest.update(repr(sorted(table.items())).encode())
    return digest.hexdigest()[:12]


def match_text(text: str, where: str) -> list[Hit]:
    """Denylist entries in a name, purpose or reason (whole words and phrases)."""
    if not text or not text.strip():
        return []
    found: dict[str, Hit] = {}

    def add(label: str, term: str) -> None:
        found.setdefault(label, Hit(label, term, where, text))

    for words in readings(text):
        for i in range(len(words)):
            for n in range(1, min(_MAX_PHRASE, len(words) - i) + 1):
                phrase = tuple(words[i : i + n])
                if phrase in _PHRASES:
                    add(_PHRASES[phrase], " ".join(phrase))
            word = words[i]
            if word in _COMPACTS:
                add(_COMPACTS[word], word)
            if len(word) >= 7:
                for fuzzy, label in FUZZY_WORDS.items():
                    if abs(len(fuzzy) - len(word)) <= 1 and edit_distance_at_most_one(word, fuzzy):
                        add(label, word)
        # Words broken up to dodge matching ("im mi gra tion", "H S-I"): short neighbours
        # joined again (up to four of them).
        for i in range(len(words)):
            joined = words[i]
            for j in range(i + 1, min(i + 4, len(words))):
                if len(words[j]) > 5 or len(joined) > 12:
                    break
                joined += words[j]
                if joined in _COMPACTS:
                    add(_COMPACTS[joined], " ".join(words[i : j + 1]))
        whole = "".join(words)
        if whole in _COMPACTS:
            add(_COMPACTS[whole], whole)
    return list(found.values())


def normalize_ori(ori: str) -> str:
    """An ORI as NCIC writes it: folded (fullwidth, look-alikes), upper-case, no separators."""
    return re.sub(r"[^A-Z0-9]", "", fold(ori).upper())


def match_ori(ori: str, where: str) -> list[Hit]:
    """Denylist entries for an ORI: the ICE LESC, DHS agency codes, TECS line ORIs."""
    value = normalize_ori(ori)
    if not value:
        return []
    if value in ORI_EXACT:
        return [Hit(ORI_EXACT[value], value, where, ori)]
    hits = []
    code = value[2:5]
    if len(value) == 9 and code in ORI_AGENCY_CODES:
        hits.append(Hit(ORI_AGENCY_CODES[code], f"agency code {code}", where, ori))
    prefix = value[:2]
    if prefix in ORI_LINE_PREFIXES:
        hits.append(Hit(ORI_LINE_PREFIXES[prefix], f"line ORI {prefix}", where, ori))
    return hits


def host_of(address: str) -> str:
    """The host of a URL, an e-mail address or a bare domain, folded and without a port."""
    text = address.strip()
    if "@" in text and "://" not in text:
        text = text.rsplit("@", 1)[1]
    elif "://" in text:
        text = urlsplit(text).hostname or ""
    else:
        text = text.split("/", 1)[0]
    text = text.split(":", 1)[0].strip().strip(".")
    if "xn--" in text.lower():
        # Punycode names ("xn--...") spell look-alike hosts; read them as the letters they show.
        with contextlib.suppress(UnicodeError):
            text = text.encode("ascii").decode("idna")
    return fold(text).replace(" ", "")


def match_domain(address: str, where: str) -> list[Hit]:
    """Denylist entries for an e-mail address, URL or host: a DHS domain or one under it, and
    any label that spells a denied name ("ice-liaison.example.org")."""
    host = host_of(address)
    if not host:
        return []
    hits: list[Hit] = []
    for domain, label in DOMAINS.items():
        bare = domain.split("/", 1)[0]
        if host == bare or host.endswith("." + bare):
            hits.append(Hit(label, domain, where, address))
            break
    seen = {h.label for h in hits}
    for hit in match_text(host.replace(".", " "), where):
        if hit.label not in seen:
            hits.append(Hit(hit.label, hit.term, where, address))
    return hits
