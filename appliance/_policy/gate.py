"""The policy gate: the one place that decides whether data may leave the box.

Every way out — a file export, a partner query, a webhook, an evidence package, a report, a
replication target — asks :class:`PolicyGate` first and goes ahead only on an allowed
:class:`Decision`. The gate denies by default. A request passes only when

- sharing is enabled in the site config (it is off by default: the SB 274 profile);
- every agency involved — the requester, each agency it acts on behalf of, each recipient — is
  in the city's registry of approved California public agencies, unexpired
  (Civil Code 1798.90.5(f), 1798.90.55; AG bulletin 2023-DLE-06);
- none of them, nor the purpose or reason, hits the built-in ICE/CBP/immigration denylist
  (Gov. Code 7284.6), which no configuration can weaken;
- the purpose is one the site's policy authorizes and the case number matches its pattern;
- the audit trail verifies: the box refuses to share while its own records are broken.

Every decision, allowed or denied, is appended to the audit trail (``share.decision``) with the
reasons and what matched.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
import weakref
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, get_args
from urllib.parse import urlsplit

from .._storage.sharing import SharingRecords, SharingRow
from . import denylist
from .agencies import TASK_FORCE, AgencyRegistry, ori_problems, owns_domain
from .chain import ChainVerifier
from .normalize import mixed_script_words

if TYPE_CHECKING:
    from .._config import ApprovedAgency, RootConfig
    from .._storage import Store
    from .._storage.audit import AuditReport
    from ..base import Clock

logger = logging.getLogger(__name__)

#: The ways data leaves the box; each :class:`ShareRequest` names one.
Channel = Literal["export", "partner_query", "webhook", "evidence", "report", "replication"]
CHANNELS: tuple[str, ...] = get_args(Channel)
#: The audit event kind of every gate decision.
DECISION_EVENT = "share.decision"


@dataclass(frozen=True)
class Recipient:
    """Who receives the data: an agency (name and ORI), and where it goes (e-mail, URL).

    Each part that is given is checked: the name and ORI against the registry and denylist, the
    e-mail's domain and the URL's host against the denylist and the agency's registered domains.
    """

    name: str = ""
    ori: str | None = None
    email: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class ShareScope:
    """What is asked for: plates and a time window (recorded in the audit trail, encrypted)."""

    plates: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "plates": list(self.plates),
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "description": self.description,
        }


@dataclass(frozen=True)
class ShareRequest:
    """One request to let data leave the box.

    :param agency: the requesting agency's name, as it calls itself
    :param ori: its ORI (California ORIs are ``CA`` and 7 letters or digits, e.g. CA0010000)
    :param person: the individual requester (name, badge) — the written request's "person"
    :param email: the requester's e-mail address; its domain is checked too
    :param purpose: one of the site's ``policy.purposes`` (the closed list)
    :param case_number: must match ``policy.case_number_pattern``
    :param on_behalf_of: every agency the request is made for, in order (the whole chain)
    :param recipients: who receives the data; empty means the requesting agency itself
    :param channel: how it leaves: export, partner_query, webhook, evidence, report, replication
    :param scope: what is asked for
    :param reason: free-text narrative; checked for immigration purposes like the purpose
    """

    agency: str
    ori: str | None = None
    person: str = ""
    email: str | None = None
    purpose: str = ""
    case_number: str = ""
    on_behalf_of: tuple[str, ...] = ()
    recipients: tuple[Recipient, ...] = ()
    channel: Channel = "export"
    scope: ShareScope = field(default_factory=ShareScope)
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["on_behalf_of"] = list(self.on_behalf_of)
        data["recipients"] = [asdict(r) for r in self.recipients]
        data["scope"] = self.scope.as_dict()
        return data


@dataclass(frozen=True)
class Decision:
    """The gate's answer. Share only when ``allowed``.

    :param reasons: why it was denied (each a sentence naming the rule), or, when allowed, what
        allowed it (the registry entries and the approval)
    :param matched: what matched, as ``"<rule>:<field>:<value>"`` — e.g.
        ``"denylist:on_behalf_of[0]:ICE"`` or ``"registry:agency:CA0010000"``
    :param policy_version: hash of the site policy, sharing settings and denylist in force
    """

    allowed: bool
    reasons: list[str]
    matched: list[str]
    policy_version: str
    channel: str = ""
    #: the sharing request or standing approval a delivery was authorized under, if any
    approval_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def share_request_from_dict(data: dict[str, Any]) -> ShareRequest:
    """The inverse of :meth:`ShareRequest.as_dict` (for requests kept on file)."""
    scope = data.get("scope") or {}
    channel = data.get("channel", "export")
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    return ShareRequest(
        agency=str(data.get("agency", "")),
        ori=data.get("ori") or None,
        person=str(data.get("person", "")),
        email=data.get("email") or None,
        purpose=str(data.get("purpose", "")),
        case_number=str(data.get("case_number", "")),
        on_behalf_of=tuple(str(x) for x in data.get("on_behalf_of") or ()),
        recipients=tuple(
            Recipient(
                name=str(r.get("name", "")), ori=r.get("ori") or None,
                email=r.get("email") or None, url=r.get("url") or None,
            )
            for r in data.get("recipients") or ()
        ),
        channel=channel,
        scope=ShareScope(
            plates=tuple(scope.get("plates") or ()),
            start=datetime.fromisoformat(scope["start"]) if scope.get("start") else None,
            end=datetime.fromisoformat(scope["end"]) if scope.get("end") else None,
            description=str(scope.get("description", "")),
        ),
        reason=str(data.get("reason", "")),
    )


_ORI_IN_TEXT = re.compile(r"\b([A-Za-z]{2}[A-Za-z0-9]{7})\b")


def _split_ori(text: str) -> tuple[str, str | None]:
    """"Oakland Police Department (CA0010900)" -> (name, ORI); an ORI needs a digit in it."""
    for match in _ORI_IN_TEXT.finditer(text):
        candidate = match.group(1)
        if any(ch.isdigit() for ch in candidate):
            name = (text[: match.start()] + text[match.end() :]).strip(" ()[],;-")
            return name, candidate.upper()
    return text.strip(), None


class _Findings:
    """Reasons and matches collected while a request is evaluated."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.matched: list[str] = []
        self.approved: list[str] = []

    def deny(self, reason: str, matched: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)
        if matched not in self.matched:
            self.matched.append(matched)

    def denylisted(self, hits: list[denylist.Hit]) -> None:
        for hit in hits:
            self.deny(hit.reason(), hit.matched())


class PolicyGate:
    """The single choke point for data leaving the box. Deny by default; audit everything.

    Build one per open store (``PolicyGate(store, config.root, clock)``); the appliance keeps
    one as ``appliance.policy_gate``. The coroutines write every decision to the audit trail
    before returning it; a decision that cannot be audited is a denial.
    """

    def __init__(
        self,
        store: Store,
        config: RootConfig,
        clock: Clock,
        *,
        full_verify_seconds: float = 300.0,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.registry = AgencyRegistry(config.sharing)
        self.chain = ChainVerifier(store, clock, full_verify_seconds)
        self.records = SharingRecords(store)

    @property
    def policy_version(self) -> str:
        """Hash of the policy, the sharing settings and the denylist in force."""
        digest = hashlib.sha256()
        digest.update(self.config.policy.version().encode())
        digest.update(self.config.sharing.model_dump_json().encode())
        digest.update(denylist.version().encode())
        return digest.hexdigest()[:12]

    # -- pure evaluation (no audit) ------------------------------------------------------------

    def evaluate(self, request: ShareRequest) -> tuple[list[str], list[str]]:
        """(reasons it is denied, what matched) for ``request`` by the config and denylist alone
        — without the audit-chain check and without auditing. Empty reasons: it would pass.
        Callers that share must use :meth:`check`."""
        found = _Findings()
        today = self.clock.now().date()
        sharing = self.config.sharing
        if not sharing.enabled:
            found.deny(
                "sharing is off on this box (sharing.enabled is false, the SB 274 default): no "
                "data is shared with any agency",
                "config:sharing.enabled:false",
            )
        if request.channel not in CHANNELS:
            found.deny(f"unknown channel {request.channel!r}", f"channel:{request.channel}")
        self._denylist(request, found)
        self._parties(request, found, today)
        self._task_forces(request, found)
        self._purpose(request, found)
        return found.reasons, found.matched if found.reasons else found.approved + found.matched

    def _denylist(self, request: ShareRequest, found: _Findings) -> None:
        found.denylisted(denylist.match_text(request.agency, "agency"))
        _, embedded = _split_ori(request.agency)
        if embedded:
            found.denylisted(denylist.match_ori(embedded, "agency"))
        if request.ori:
            found.denylisted(denylist.match_ori(request.ori, "ori"))
        if request.email:
            found.denylisted(denylist.match_domain(request.email, "email"))
        found.denylisted(denylist.match_text(request.person, "person"))
        for i, agency in enumerate(request.on_behalf_of):
            where = f"on_behalf_of[{i}]"
            found.denylisted(denylist.match_text(agency, where))
            _, ori = _split_ori(agency)
            if ori:
                found.denylisted(denylist.match_ori(ori, where))
            if "@" in agency or "." in agency.strip(". "):
                found.denylisted(denylist.match_domain(agency, where))
        for i, recipient in enumerate(request.recipients):
            where = f"recipients[{i}]"
            found.denylisted(denylist.match_text(recipient.name, f"{where}.name"))
            _, embedded = _split_ori(recipient.name)
            if embedded:
                found.denylisted(denylist.match_ori(embedded, f"{where}.name"))
            if recipient.ori:
                found.denylisted(denylist.match_ori(recipient.ori, f"{where}.ori"))
            if recipient.email:
                found.denylisted(denylist.match_domain(recipient.email, f"{where}.email"))
            if recipient.url:
                found.denylisted(denylist.match_domain(recipient.url, f"{where}.url"))
                found.denylisted(denylist.match_text(recipient.url, f"{where}.url"))
        for where, text in (
            ("purpose", request.purpose),
            ("reason", request.reason),
            ("case_number", request.case_number),
            ("scope", request.scope.description),
        ):
            found.denylisted(denylist.match_text(text, where))
        self._spoofs(request, found)

    def _spoofs(self, request: ShareRequest, found: _Findings) -> None:
        """Refuse words that mix scripts: a look-alike spelling hides what a word says."""
        texts = [("agency", request.agency), ("person", request.person),
                 ("purpose", request.purpose), ("reason", request.reason),
                 ("case_number", request.case_number), ("scope", request.scope.description),
                 ("email", request.email or "")]
        texts += [(f"on_behalf_of[{i}]", t) for i, t in enumerate(request.on_behalf_of)]
        for i, r in enumerate(request.recipients):
            texts += [(f"recipients[{i}]", r.name), (f"recipients[{i}]", r.email or ""),
                      (f"recipients[{i}]", r.url or "")]
        for where, text in texts:
            for word in mixed_script_words(text):
                found.deny(
                    f"{where} {text!r} spells {word!r} with letters of different scripts "
                    "(a look-alike spelling); write it in plain letters",
                    f"spoof:{where}:mixed-script",
                )

    def _agency(
        self, found: _Findings, where: str, today: Any, *, name: str, ori: str | None
    ) -> ApprovedAgency | None:
        if not ori:
            # "Oakland Police Department (CA0010900)": the ORI written into the name counts.
            name, ori = _split_ori(name)
        if ori:
            for problem in ori_problems(ori):
                found.deny(f"{where}: {problem}", f"registry:{where}:not-california:{ori}")
        lookup = self.registry.find(name=name, ori=ori, today=today)
        if lookup.problem is not None:
            label = (ori or name or "?").strip()
            found.deny(f"{where}: {lookup.problem}", f"registry:{where}:not-approved:{label}")
            return None
        assert lookup.agency is not None
        found.approved.append(f"registry:{where}:{lookup.agency.ori}")
        return lookup.agency

    def _task_forces(self, request: ShareRequest, found: _Findings) -> None:
        """A task force receives data only for its registered primary purpose (L-14): checked
        for every approved party the request names."""
        parties = [("agency", Recipient(name=request.agency, ori=request.ori))]
        parties += [(f"on_behalf_of[{i}]", Recipient(name=t))
                    for i, t in enumerate(request.on_behalf_of)]
        parties += [(f"recipients[{i}]", r) for i, r in enumerate(request.recipients)]
        purpose = " ".join(request.purpose.split()).lower()
        for where, party in parties:
            agency = self._resolve(party)
            if agency is None or agency.kind != TASK_FORCE:
                continue
            if purpose != (agency.primary_purpose or "").lower():
                found.deny(
                    f"{where}: {agency.name} is a task force approved only for its primary "
                    f"purpose {agency.primary_purpose!r}, not {request.purpose!r} "
                    "(Gov. Code 7284.6(b)(3))",
                    f"registry:{where}:task-force-purpose:{agency.ori}",
                )

    def _parties(self, request: ShareRequest, found: _Findings, today: Any) -> None:
        if not request.agency.strip() and not request.ori:
            found.deny("the request must name the requesting agency", "request:agency:missing")
        requester = self._agency(
            found, "agency", today, name=request.agency.strip(), ori=request.ori
        )
        if not request.person.strip():
            found.deny(
                "the request must name the person asking (Vallejo 426.8: a written request "
                "names the agency, the person and the purpose)",
                "request:person:missing",
            )
        if request.email and requester is not None and not owns_domain(requester, request.email):
            found.deny(
                f"email {request.email!r} is not at a domain registered for {requester.name}",
                f"registry:email:unregistered-domain:{denylist.host_of(request.email)}",
            )
        for i, text in enumerate(request.on_behalf_of):
            name, ori = _split_ori(text)
            self._agency(found, f"on_behalf_of[{i}]", today, name=name, ori=ori)
        for i, recipient in enumerate(request.recipients):
            where = f"recipients[{i}]"
            agency: ApprovedAgency | None = None
            if recipient.name.strip() or recipient.ori:
                agency = self._agency(
                    found, where, today, name=recipient.name.strip(), ori=recipient.ori
                )
            else:
                address = recipient.email or recipient.url or ""
                owner = self.registry.by_domain(address) if address else None
                if owner is None:
                    found.deny(
                        f"{where}: {address or 'an unnamed recipient'!r} belongs to no approved "
                        "agency",
                        f"registry:{where}:not-approved:{denylist.host_of(address) or '?'}",
                    )
                else:
                    agency = self._agency(found, where, today, name="", ori=owner.ori)
            for kind, given in (("email", recipient.email), ("url", recipient.url)):
                if given and agency is not None and not owns_domain(agency, given):
                    found.deny(
                        f"{where}.{kind}: {given!r} is not at a domain registered for "
                        f"{agency.name}",
                        f"registry:{where}.{kind}:unregistered-domain:{denylist.host_of(given)}",
                    )

    def _purpose(self, request: ShareRequest, found: _Findings) -> None:
        policy = self.config.policy
        wanted = " ".join(request.purpose.split()).lower()
        if not any(wanted == p.lower() for p in policy.purposes):
            found.deny(
                f"purpose {request.purpose!r} is not one this site authorizes (choose from: "
                f"{', '.join(policy.purposes)})",
                f"policy:purpose:{request.purpose or '-'}",
            )
        case = request.case_number.strip().upper()
        if not re.fullmatch(policy.case_number_pattern, case):
            found.deny(
                f"case number {request.case_number!r} does not match the site's pattern (a case "
                "or incident number such as 26-001234 is required)",
                f"policy:case_number:{request.case_number or '-'}",
            )

    # -- audited decisions -----------------------------------------------------------------

    async def audit_chain(self) -> AuditReport:
        """The audit trail's state, verified incrementally since the last full verification
        (a full one at least every ``full_verify_seconds`` on the clock's monotonic time)."""
        return await self.chain.report()

    async def check(
        self, request: ShareRequest, actor: str, *, via: str = "api",
        approval_id: str | None = None,
    ) -> Decision:
        """Decide ``request`` for ``actor`` (a username, ``system`` or a plugin name) and audit
        it as a ``share.decision`` event; ``via`` says where it came from (console, cli, an
        exporter's name).

        With ``approval_id`` the request must also be covered by that approved sharing request
        or standing approval: approved, unexpired, covering ``request.channel``, and made for
        the agency this request names (its requester or one of its recipients).
        """
        reasons: list[str] = []
        matched: list[str] = []
        if approval_id is not None:
            row, reasons, matched = await self._approval(approval_id, request.channel)
            if row is not None:
                approved = self._approved_oris(
                    share_request_from_dict(row.payload["request"]), requester=True
                )
                asking = self._resolve(Recipient(name=request.agency, ori=request.ori))
                if asking is None or asking.ori not in approved:
                    reasons.append(
                        f"{request.agency!r} is not the agency {row.kind} {approval_id} was "
                        "approved for"
                    )
                    matched.append(f"approval:{approval_id}:agency-not-approved")
        return await self._decide(
            request, actor, via=via, approval_id=approval_id, reasons=reasons, matched=matched
        )

    async def _approval(
        self, approval_id: str, channel: str
    ) -> tuple[SharingRow | None, list[str], list[str]]:
        """The approval on file and why it does not cover ``channel`` now (empty: it does)."""
        row = await self.records.get(approval_id)
        if row is None:
            return None, [f"no sharing request or standing approval {approval_id!r}"], [
                f"approval:{approval_id}:missing"
            ]
        reasons: list[str] = []
        matched: list[str] = []
        now = self.clock.now()
        if row.status != "approved":
            reasons.append(f"{row.kind} {approval_id} is {row.status}, not approved")
            matched.append(f"approval:{approval_id}:{row.status}")
        elif row.expires_at is not None and row.expires_at <= now:
            reasons.append(f"{row.kind} {approval_id} expired on {row.expires_at.isoformat()}")
            matched.append(f"approval:{approval_id}:expired")
        channels = tuple(row.payload.get("channels") or ())
        if channel not in channels:
            reasons.append(
                f"{row.kind} {approval_id} does not cover channel {channel!r} "
                f"(approved: {', '.join(channels) or 'none'})"
            )
            matched.append(f"approval:{approval_id}:channel:{channel}")
        return row, reasons, matched

    async def _decide(
        self,
        request: ShareRequest,
        actor: str,
        *,
        via: str,
        approval_id: str | None,
        reasons: list[str] | None = None,
        matched: list[str] | None = None,
        chain: bool = True,
    ) -> Decision:
        own_reasons, own_matched = self.evaluate(request)
        all_reasons = [*(reasons or []), *own_reasons]
        all_matched = [*(matched or []), *own_matched]
        if chain:
            report = await self.chain.report()
            if not report.intact:
                all_reasons.append(
                    f"the audit trail does not verify ({report.reason}): the box shares "
                    "nothing until it is repaired (run alprbox audit verify)"
                )
                all_matched.append(f"audit:chain:broken:{report.first_broken_id or 'head'}")
        allowed = not all_reasons
        if allowed:
            all_reasons = [
                f"approved: every agency is in the registry of approved California public "
                f"agencies; purpose {request.purpose!r} authorized; case number valid"
            ]
        decision = Decision(
            allowed=allowed,
            reasons=all_reasons,
            matched=all_matched,
            policy_version=self.policy_version,
            channel=request.channel,
            approval_id=approval_id,
        )
        return await self._audit(decision, request.as_dict(), actor, via)

    async def _audit(
        self, decision: Decision, request: dict[str, Any], actor: str, via: str
    ) -> Decision:
        detail = {**decision.as_dict(), "via": via, "request": request}
        try:
            await self.store.record_event(DECISION_EVENT, actor, detail)
        except Exception as err:
            # A decision nobody can audit is not made: deny.
            logger.error("Policy gate: could not audit a decision (%s); denying", err)
            return replace(
                decision,
                allowed=False,
                reasons=[*decision.reasons, f"the decision could not be audited ({err})"],
                matched=[*decision.matched, "audit:write:failed"],
            )
        if not decision.allowed:
            # Rule names only: the values (agencies, case numbers) stay in the encrypted trail.
            rules = sorted({":".join(m.split(":", 2)[:2]) for m in decision.matched})
            logger.warning(
                "Policy gate denied %s for %r via %s: %s", decision.channel, actor, via,
                ", ".join(rules),
            )
        return decision

    async def check_replication_target(self, url: str, actor: str = "system") -> Decision:
        """Whether the box may replicate its database to ``url`` (a litestream replica URL or
        path). Hosting by the city's own storage is not sharing (Civil Code 1798.90.55(b),
        L-8), so the registry does not apply; a denylisted host, domain or path is refused, and
        when ``sharing.storage_domains`` is set the host must be one of them. Audited."""
        found = _Findings()
        parts = urlsplit(url) if "://" in url else None
        host = (parts.hostname or "") if parts else ""
        scheme = parts.scheme.lower() if parts else "file"
        if host:
            found.denylisted(denylist.match_domain(host, "replica host"))
        found.denylisted(denylist.match_text(url, "replica url"))
        local = scheme == "file" or not host or _loopback(host)
        domains = self.config.sharing.storage_domains
        if not local and domains:
            folded = denylist.host_of(host)
            if not any(folded == d or folded.endswith("." + d) for d in domains):
                found.deny(
                    f"replica host {host!r} is not the city's own storage "
                    f"(sharing.storage_domains: {', '.join(domains)})",
                    f"replication:host:not-city-storage:{host}",
                )
        allowed = not found.reasons
        decision = Decision(
            allowed=allowed,
            reasons=found.reasons or [
                "replication to the city's own storage is hosting, not sharing "
                "(Civil Code 1798.90.55(b))"
            ],
            matched=found.matched or [f"replication:{scheme}:{host or 'local'}"],
            policy_version=self.policy_version,
            channel="replication",
        )
        return await self._audit(decision, {"replica": url, "channel": "replication"}, actor,
                                 "replication")

    async def authorize_delivery(
        self, approval_id: str, channel: Channel, actor: str = "system", *,
        recipient: Recipient | None = None,
    ) -> Decision:
        """Whether data may go out now under an approved sharing request or a standing approval.

        The approval must exist, be approved, unexpired and cover ``channel``; the stored request
        is then checked again in full (registry, denylist, purpose, case number, audit chain),
        so an agency removed from the registry or a broken audit trail stops deliveries at
        once. ``recipient``, when given, must be an agency the approval names (the requester
        when it names no recipients). Audited like :meth:`check`.
        """
        row, reasons, matched = await self._approval(approval_id, channel)
        if row is None:
            decision = Decision(
                allowed=False,
                reasons=reasons,
                matched=matched,
                policy_version=self.policy_version,
                channel=channel,
                approval_id=approval_id,
            )
            return await self._audit(decision, {"approval_id": approval_id}, actor, "delivery")
        stored = share_request_from_dict({**row.payload["request"], "channel": channel})
        request = stored
        if recipient is not None:
            request = replace(stored, recipients=(recipient,))
            approved = self._approved_oris(stored)
            resolved = self._resolve(recipient)
            if resolved is None or resolved.ori not in approved:
                reasons.append(
                    f"recipient {recipient.name or recipient.email or recipient.url!r} is not an "
                    f"agency {approval_id} was approved for"
                )
                matched.append(f"approval:{approval_id}:recipient-not-approved")
        return await self._decide(
            request, actor, via="delivery", approval_id=approval_id, reasons=reasons,
            matched=matched,
        )

    def _resolve(self, recipient: Recipient) -> ApprovedAgency | None:
        """The registry entry a party names (by ORI, name, or its address's domain)."""
        name, ori = recipient.name.strip(), recipient.ori
        if not ori and name:
            name, ori = _split_ori(name)
        if ori:
            return self.registry.by_ori(ori)
        if name:
            return self.registry.by_name(name)
        address = recipient.email or recipient.url
        return self.registry.by_domain(address) if address else None

    def _approved_oris(self, request: ShareRequest, *, requester: bool = False) -> set[str]:
        """ORIs of whom an approval lets receive data: its recipients (or, naming none, its
        requester); with ``requester``, the requester too."""
        me = Recipient(name=request.agency, ori=request.ori)
        parties = request.recipients or (me,)
        if requester:
            parties = (*parties, me)
        found = (self._resolve(p) for p in parties)
        return {a.ori for a in found if a is not None}


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_GATES: weakref.WeakKeyDictionary[Store, PolicyGate] = weakref.WeakKeyDictionary()


def gate_for(store: Store, config: RootConfig, clock: Clock) -> PolicyGate:
    """The one gate of an open store (made on first use): every caller — console, CLI,
    exporters, replication — shares its verified-chain cache. A new config (after a reload)
    gets a new gate."""
    gate = _GATES.get(store)
    if gate is None or gate.config is not config:
        gate = PolicyGate(store, config, clock)
        _GATES[store] = gate
    return gate
