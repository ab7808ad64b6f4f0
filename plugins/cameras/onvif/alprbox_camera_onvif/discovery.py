"""WS-Discovery: find ONVIF cameras on the local network (SOAP over UDP, port 3702).

A small implementation of Probe/ProbeMatches (WS-Discovery 2005/04, as ONVIF uses it): the
PyPI ``wsdiscovery`` package skips loopback interfaces, which makes it untestable here and
useless for a camera on the same box. :func:`discover` sends one Probe for
``dn:NetworkVideoTransmitter`` to the multicast group (or to one address, unicast) and collects
the answers for ``wait`` seconds; the console can list the :class:`DiscoveredDevice` values and
fill a camera's host and port from ``xaddrs``.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from lxml import etree

MULTICAST_GROUP = ("239.255.255.250", 3702)
_WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
_WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
_SOAP = "http://www.w3.org/2003/05/soap-envelope"
# Anyone on the network can send us a datagram: no entities, no network, no huge trees.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


@dataclass(frozen=True)
class DiscoveredDevice:
    """One device that answered: its endpoint id, service addresses, scopes and types."""

    endpoint: str
    xaddrs: tuple[str, ...]
    scopes: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    @property
    def host(self) -> str:
        return urlsplit(self.xaddrs[0]).hostname or "" if self.xaddrs else ""

    @property
    def port(self) -> int:
        if not self.xaddrs:
            return 0
        parts = urlsplit(self.xaddrs[0])
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def name(self) -> str:
        """The ``onvif://www.onvif.org/name/...`` scope, if the camera has one."""
        for scope in self.scopes:
            if scope.startswith("onvif://www.onvif.org/name/"):
                return scope.rsplit("/", 1)[-1]
        return ""


def probe_message(message_id: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{_SOAP}" xmlns:a="{_WSA}" xmlns:d="{_WSD}" '
        'xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header>'
        f"<a:MessageID>{message_id}</a:MessageID>"
        "<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>"
        "<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>"
        "</s:Header><s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe>"
        "</s:Body></s:Envelope>"
    ).encode()


def parse_probe_matches(data: bytes, message_id: str | None = None) -> list[DiscoveredDevice]:
    """The devices in one ProbeMatches datagram (empty for anything else, or a reply to another
    probe when ``message_id`` is given)."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError:
        return []
    if message_id is not None:
        relates = root.findtext(f".//{{{_WSA}}}RelatesTo")
        if relates is not None and relates.strip() != message_id:
            return []
    devices = []
    for match in root.iter(f"{{{_WSD}}}ProbeMatch"):
        endpoint = match.findtext(f"{{{_WSA}}}EndpointReference/{{{_WSA}}}Address") or ""
        devices.append(
            DiscoveredDevice(
                endpoint=endpoint.strip(),
                xaddrs=tuple((match.findtext(f"{{{_WSD}}}XAddrs") or "").split()),
                scopes=tuple((match.findtext(f"{{{_WSD}}}Scopes") or "").split()),
                types=tuple((match.findtext(f"{{{_WSD}}}Types") or "").split()),
            )
        )
    return [d for d in devices if d.xaddrs]


class _Collector(asyncio.DatagramProtocol):
    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        self.found: dict[str, DiscoveredDevice] = {}

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        for device in parse_probe_matches(data, self.message_id):
            self.found.setdefault(device.endpoint or device.xaddrs[0], device)


async def discover(
    wait: float = 3.0,
    *,
    address: tuple[str, int] = MULTICAST_GROUP,
    ttl: int = 1,
) -> list[DiscoveredDevice]:
    """Probe for ONVIF cameras and return those that answered within ``wait`` seconds.

    ``address`` is the multicast group by default; pass a camera's ``(ip, 3702)`` to probe one
    device directly (unicast), which also works where multicast is filtered.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    sock.bind(("", 0))
    message_id = f"urn:uuid:{uuid.uuid4()}"
    transport, collector = await loop.create_datagram_endpoint(
        lambda: _Collector(message_id), sock=sock
    )
    try:
        transport.sendto(probe_message(message_id), address)
        await asyncio.sleep(wait)  # answers arrive in the protocol while we wait
    finally:
        transport.close()
    return list(collector.found.values())
