"""The registry of California public agencies the city approved for sharing.

Built from the site config's ``sharing.agencies``. Civil Code 1798.90.5(f) and 1798.90.55 allow
sharing only with a *California* public agency, and the Attorney General's bulletin 2023-DLE-06
spells out: not with federal or out-of-state agencies. So an entry must carry a California ORI
(``CA`` and 7 letters or digits), a California public-agency kind, and must not be a federal
agency or hit the immigration denylist; the config loader refuses it otherwise, naming the line
(:func:`entry_problems` is what it calls).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from . import denylist
from .normalize import compact, fold, mixed_script_words, tokens

if TYPE_CHECKING:
    from .._config import ApprovedAgency, SharingSettings

#: California ORIs: "CA" then 7 letters or digits (county code, agency, suffix), e.g. CA0010000.
CA_ORI = re.compile(r"CA[A-Z0-9]{7}")
#: The kinds of California public agency the registry accepts.
AGENCY_KINDS: tuple[str, ...] = (
    "city police", "county sheriff", "district attorney", "county probation", "city attorney",
    "state agency", "state police", "attorney general", "university police",
    "community college police", "school district police", "transit police", "port police",
    "airport police", "park district police", "housing authority police", "county agency",
    "city agency", "task force",
)  # fmt: skip
#: A multi-agency task force: approved only with a non-immigration primary purpose, and given
#: data only for that purpose (Gov. Code 7284.6(b)(3), L-14).
TASK_FORCE = "task force"

#: Positions 3-5 of a federal ORI name the agency; a field office carries its state's code, so
#: "CAFBI..." is the FBI in California, not a California agency.
FEDERAL_ORI_CODES: dict[str, str] = {
    "FBI": "FBI", "DEA": "DEA", "ATF": "ATF", "USM": "U.S. Marshals Service",
    "USS": "U.S. Secret Service", "IRS": "IRS", "USP": "U.S. Postal Inspection Service",
    "NPS": "National Park Service", "FPS": "Federal Protective Service",
    "BOP": "Bureau of Prisons", "DOJ": "U.S. Department of Justice", "VAP": "VA Police",
    "NCI": "NCIS", "OSI": "Air Force OSI", "CID": "Army CID", "USN": "U.S. Navy",
    "USA": "U.S. Army", "USF": "U.S. Air Force", "USG": "U.S. Coast Guard",
    "TSA": "TSA", "FAA": "FAA", "BIA": "Bureau of Indian Affairs", "BLM": "BLM",
    "FWS": "Fish and Wildlife Service", "FSV": "Forest Service", "TRE": "Treasury",
}  # fmt: skip
#: Domains of federal government (not California): refused in the registry.
FEDERAL_DOMAINS: tuple[str, ...] = (
    "fbi.gov", "ic.fbi.gov", "leo.gov", "usdoj.gov", "justice.gov", "atf.gov", "dea.gov",
    "usmarshals.gov", "secretservice.gov", "usss.dhs.gov", "uspis.gov", "treasury.gov",
    "irs.gov", "tsa.gov", "tsa.dhs.gov", "uscg.mil", "fletc.gov", "nps.gov", "fs.fed.us",
    "usda.gov", "doi.gov", "va.gov", "state.gov",
)  # fmt: skip
_FEDERAL_SUFFIXES = (".mil", ".fed.us")
#: Words that make a name federal or out of state; such an agency is not a California one.
_FEDERAL_NAME = (
    ("federal",), ("fbi",), ("united", "states"), ("us",), ("usa",), ("dea",), ("atf",),
    ("marshals",), ("department", "justice"), ("interpol",), ("europol",), ("national",
    "guard"), ("secret", "service"), ("military",), ("army",), ("navy",), ("air", "force"),
    ("coast", "guard"), ("naval",),
)  # fmt: skip


def federal_name(name: str) -> str | None:
    """The words that make ``name`` a federal agency's, or None."""
    words = tokens(name)
    for phrase in _FEDERAL_NAME:
        for i in range(len(words) - len(phrase) + 1):
            if tuple(words[i : i + len(phrase)]) == phrase:
                # "California Department of Justice" is the state's; "U.S. Department of Justice"
                # is caught by "us".
                if phrase == ("department", "justice") and "california" in words:
                    continue
                return " ".join(phrase)
    return None


def federal_domain(host: str) -> str | None:
    """The federal domain ``host`` is (or is under), or None."""
    host = denylist.host_of(host)
    for domain in FEDERAL_DOMAINS:
        if host == domain or host.endswith("." + domain):
            return domain
    for suffix in _FEDERAL_SUFFIXES:
        if host.endswith(suffix):
            return suffix
    return None


def ori_problems(ori: str) -> list[str]:
    """Why ``ori`` is not the ORI of a California public agency (empty when it is)."""
    value = denylist.normalize_ori(ori)
    problems = [h.reason() for h in denylist.match_ori(ori, "ORI")]
    if not CA_ORI.fullmatch(value):
        problems.append(
            f"ORI {ori!r} is not a California ORI (CA followed by 7 letters or digits, e.g. "
            "CA0010000): only California public agencies may receive ALPR data (Civil Code "
            "1798.90.5(f), 1798.90.55; AG bulletin 2023-DLE-06)"
        )
    elif (code := value[2:5]) in FEDERAL_ORI_CODES:
        problems.append(
            f"ORI {ori!r} is a federal agency's ({FEDERAL_ORI_CODES[code]}, agency code {code}); "
            "federal agencies are not California public agencies (AG bulletin 2023-DLE-06)"
        )
    return problems


def name_problems(name: str) -> list[str]:
    """Why ``name`` cannot be a registry agency's name (empty when it can)."""
    problems = [h.reason() for h in denylist.match_text(name, "agency name")]
    for word in mixed_script_words(name):
        problems.append(
            f"agency name {name!r} spells {word!r} with letters of different scripts (a "
            "look-alike spelling); write it in plain letters"
        )
    federal = federal_name(name)
    if federal is not None:
        problems.append(
            f"agency name {name!r} names a federal or non-California agency ({federal!r}); only "
            "California public agencies may receive ALPR data (Civil Code 1798.90.55)"
        )
    return problems


def domain_problems(domain: str) -> list[str]:
    """Why ``domain`` cannot be an approved agency's e-mail or network domain."""
    problems = [h.reason() for h in denylist.match_domain(domain, "domain")]
    federal = federal_domain(domain)
    if federal is not None:
        problems.append(
            f"domain {domain!r} belongs to the federal government ({federal}); only California "
            "public agencies may receive ALPR data"
        )
    return problems


@dataclass(frozen=True)
class Lookup:
    """The registry's answer about one party: the entry (if found) and why it does not count."""

    agency: ApprovedAgency | None
    problem: str | None


class AgencyRegistry:
    """Approved agencies by ORI, name (folded) and domain; expiry is checked at each lookup."""

    def __init__(self, settings: SharingSettings) -> None:
        self.settings = settings
        self.agencies = tuple(settings.agencies)
        self._by_ori = {denylist.normalize_ori(a.ori): a for a in self.agencies}
        self._by_name: dict[str, ApprovedAgency] = {}
        for agency in self.agencies:
            for name in (agency.name, *agency.aliases):
                self._by_name[compact(name)] = agency

    def by_ori(self, ori: str) -> ApprovedAgency | None:
        return self._by_ori.get(denylist.normalize_ori(ori))

    def by_name(self, name: str) -> ApprovedAgency | None:
        key = compact(name)
        return self._by_name.get(key) if key else None

    def by_domain(self, address: str) -> ApprovedAgency | None:
        host = denylist.host_of(address)
        for agency in self.agencies:
            if owns_domain(agency, host):
                return agency
        return None

    def current(self, agency: ApprovedAgency, today: date) -> str | None:
        """Why ``agency``'s approval does not count today, or None when it does."""
        if today < agency.approved_on:
            return f"{agency.name} ({agency.ori}) is approved only from {agency.approved_on}"
        if today > agency.expires:
            return (
                f"the city's approval of {agency.name} ({agency.ori}) expired on "
                f"{agency.expires}; renew it in sharing.agencies"
            )
        return None

    def find(self, *, name: str = "", ori: str | None = None, today: date) -> Lookup:
        """The approved, current entry for a party named ``name`` with ORI ``ori``."""
        if ori:
            agency = self.by_ori(ori)
            if agency is None:
                return Lookup(None, f"ORI {ori!r} is not in the registry of approved agencies")
            if name and compact(name) not in {compact(n) for n in (agency.name, *agency.aliases)}:
                return Lookup(agency, (
                    f"{name!r} is not the registered name of ORI {agency.ori} ({agency.name!r})"
                ))
        else:
            found = self.by_name(name) if name else None
            if found is None:
                return Lookup(None, f"{name!r} is not in the registry of approved agencies")
            agency = found
        return Lookup(agency, self.current(agency, today))


def owns_domain(agency: ApprovedAgency, address: str) -> bool:
    """Whether ``address`` (host, e-mail or URL) is one of the agency's domains or under one."""
    host = denylist.host_of(address)
    for domain in (*agency.email_domains, *agency.network_domains):
        bare = fold(domain).strip(".")
        if host == bare or host.endswith("." + bare):
            return True
    return False
