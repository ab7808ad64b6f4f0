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

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from .._config import RootConfig
    from .._storage import Store
    from .._storage.audit import AuditReport
    from ..base import Clock

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


class PolicyGate:
    """The single choke point for data leaving the box. Deny by default; audit everything.

    Build one per open store (``PolicyGate(store, config.root, clock)``). All methods are
    coroutines because every decision is written to the audit trail before it is returned.
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
        self.full_verify_seconds = full_verify_seconds

    @property
    def policy_version(self) -> str:
        """Hash of the policy, the sharing settings and the denylist in force."""
        raise NotImplementedError

    async def check(
        self, request: ShareRequest, actor: str, *, via: str = "api",
        approval_id: str | None = None,
    ) -> Decision:
        """Decide ``request`` for ``actor`` (a username, ``system`` or a plugin name) and audit
        it as a ``share.decision`` event; ``via`` says where it came from (console, cli, an
        exporter's name)."""
        raise NotImplementedError

    async def check_replication_target(self, url: str, actor: str = "system") -> Decision:
        """Whether the box may replicate its database to ``url`` (a litestream replica URL or
        path). Hosting by the city's own storage is not sharing (Civil Code 1798.90.55(b),
        L-8), so the registry does not apply; a denylisted host or domain is refused, and when
        ``sharing.storage_domains`` is set the host must be one of them. Audited."""
        raise NotImplementedError

    async def authorize_delivery(
        self, approval_id: str, channel: Channel, actor: str = "system", *,
        recipient: Recipient | None = None,
    ) -> Decision:
        """Whether data may go out now under an approved sharing request or a standing approval.

        The approval must exist, be approved, unexpired and cover ``channel``; the stored request
        is then checked again in full (registry, denylist, purpose, case number, audit chain),
        so an agency removed from the registry or a broken audit trail stops deliveries at
        once. ``recipient``, when given, must be the approved agency (or one of its domains).
        Audited like :meth:`check`.
        """
        raise NotImplementedError

    async def audit_chain(self) -> AuditReport:
        """The audit trail's state, verified incrementally since the last full verification
        (a full one at least every ``full_verify_seconds`` on the clock's monotonic time)."""
        raise NotImplementedError
