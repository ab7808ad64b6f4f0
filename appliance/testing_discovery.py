"""A WS-Discovery responder for tests: answers Probe messages (SOAP over UDP) like a camera.

    from appliance.testing_discovery import DiscoveryResponder

    async with DiscoveryResponder([device.device_service]) as responder:   # unicast, loopback
        found = await discover(1.0, address=("127.0.0.1", responder.port))

``multicast=True`` joins 239.255.255.250:3702 on loopback instead: only ever inside a private
network namespace (``ip netns add``), never on a machine's real network.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import uuid
from typing import Any, cast
from xml.etree import ElementTree as etree
from xml.sax.saxutils import escape

__all__ = ["WSD_MULTICAST", "DiscoveryResponder"]

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"

WSD_MULTICAST = ("239.255.255.250", 3702)


class DiscoveryResponder:
    """Answers WS-Discovery Probe messages (SOAP over UDP) with ProbeMatches naming ``xaddrs``.

    ``multicast=False`` binds ``host:port`` for unicast probes (safe anywhere). ``multicast=True``
    joins 239.255.255.250:3702 — only ever do that inside a private network namespace.
    """

    def __init__(
        self,
        xaddrs: list[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        multicast: bool = False,
        scopes: str = "onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/name/test",
    ) -> None:
        self.xaddrs = xaddrs
        self.host = host
        self.port = port
        self.multicast = multicast
        self.scopes = scopes
        self.endpoint = f"urn:uuid:{uuid.uuid4()}"
        self.probes = 0
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.multicast:
            sock.bind(("", WSD_MULTICAST[1]))
            membership = struct.pack(
                "4s4s", socket.inet_aton(WSD_MULTICAST[0]), socket.inet_aton("127.0.0.1")
            )
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        else:
            sock.bind((self.host, self.port))
        self.port = int(sock.getsockname()[1])
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _DiscoveryProtocol(self), sock=sock
        )

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> DiscoveryResponder:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def answer(self, data: bytes) -> bytes | None:
        try:
            root = etree.fromstring(data)
        except etree.ParseError:
            return None
        wsa = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
        wsd = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
        if root.find(f".//{{{wsd}}}Probe") is None:
            return None
        self.probes += 1
        relates = root.findtext(f".//{{{wsa}}}MessageID") or ""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<s:Envelope xmlns:s="{SOAP12}" xmlns:a="{wsa}" xmlns:d="{wsd}" '
            'xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><s:Header>'
            f"<a:MessageID>urn:uuid:{uuid.uuid4()}</a:MessageID>"
            f"<a:RelatesTo>{escape(relates)}</a:RelatesTo>"
            "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
            "<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</a:Action>"
            "</s:Header><s:Body><d:ProbeMatches><d:ProbeMatch>"
            f"<a:EndpointReference><a:Address>{self.endpoint}</a:Address></a:EndpointReference>"
            "<d:Types>dn:NetworkVideoTransmitter</d:Types>"
            f"<d:Scopes>{escape(self.scopes)}</d:Scopes>"
            f"<d:XAddrs>{escape(' '.join(self.xaddrs))}</d:XAddrs>"
            "<d:MetadataVersion>1</d:MetadataVersion>"
            "</d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>"
        ).encode()


class _DiscoveryProtocol(asyncio.DatagramProtocol):
    def __init__(self, responder: DiscoveryResponder) -> None:
        self.responder = responder
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        reply = self.responder.answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)
