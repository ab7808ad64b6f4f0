"""The sharing policy: who may receive data from this box, and the one gate every way out passes.

- :mod:`.denylist` — ICE, CBP and their components, and immigration purposes; built in, no
  configuration can weaken it (Gov. Code 7284.6).
- :mod:`.agencies` — the registry of California public agencies the city approved (Civil Code
  1798.90.5(f), 1798.90.55).
- :mod:`.gate` — :class:`~.gate.PolicyGate`, the single choke point: exports, partner queries,
  webhooks, evidence packages, reports and replication targets all ask it, and every decision
  is audited.
- :mod:`.requests` — written sharing requests, their review with MFA re-entry, and standing
  approvals (Vallejo 426.8, Emeryville 429.7, Oakland 430.8).
"""
