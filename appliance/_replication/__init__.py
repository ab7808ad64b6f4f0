"""Replication of the box's databases to the city's storage with litestream (issue 5, part B).

- :mod:`.settings`: the ``replication:`` section of the site config;
- :mod:`.litestream_config`: litestream's config file (0600, no secrets) and environment;
- :mod:`.process`: one supervised ``litestream replicate`` process and its status;
- :mod:`.supervisor`: all of them for one appliance, behind the policy gate;
- :mod:`.restore`: ``alprbox restore`` into a new directory, checked and counted;
- :mod:`.metrics`: replication state for ``/metrics``.
"""

from __future__ import annotations

from .process import ReplicaStatus
from .settings import ReplicationSettings
from .supervisor import ReplicationSupervisor

__all__ = ["ReplicaStatus", "ReplicationSettings", "ReplicationSupervisor"]
