"""A test ONVIF device: SOAP over HTTP on loopback, plus WS-Discovery over UDP.

For camera plugins and vendors who need an ONVIF device in their tests without a camera::

    from appliance.testing_onvif import OnvifDevice, OnvifProfile

    async with OnvifDevice(stream_uri=rtsp_server.url, password="secret") as device:
        camera settings: host 127.0.0.1, port device.port, username "admin", password ...
        device.emit_motion(True)         # a motion event for pull-point subscribers

It answers GetSystemDateAndTime, GetServices, GetCapabilities, GetDeviceInformation,
GetProfiles, GetStreamUri, GetSnapshotUri (and serves the JPEG, behind HTTP Digest auth),
CreatePullPointSubscription, PullMessages, Renew and Unsubscribe. Every request but
GetSystemDateAndTime must carry a WS-Security UsernameToken with a PasswordDigest
(Base64(SHA1(nonce + created + password))) created within five minutes of the device's clock;
anything else gets the ONVIF ``ter:NotAuthorized`` SOAP fault, as a real camera sends.

Faults to test against: ``password`` (the client's is then wrong), ``profiles`` without H.264,
``clock_skew`` (the device's clock is off by that much, e.g. ``timedelta(hours=1)``),
``events=False`` (no event service). ``initial_motion=False`` (or True) announces that motion
state to each new subscription, as a camera with a motion rule does; :meth:`OnvifDevice.
drop_subscriptions` makes the camera forget its subscribers (an event service restart).
:attr:`OnvifDevice.calls` records the operations asked.
:mod:`appliance.testing_discovery` answers WS-Discovery probes with the device's XAddrs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree as etree
from xml.sax.saxutils import escape

from aiohttp import web

__all__ = ["OnvifDevice", "OnvifEvent", "OnvifProfile"]

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS = {
    "s": SOAP12,
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "tns1": "http://www.onvif.org/ver10/topics",
    "ter": "http://www.onvif.org/ver10/error",
}
_NSDECL = " ".join(f'xmlns:{p}="{u}"' for p, u in NS.items())
MOTION_TOPIC = "tns1:RuleEngine/CellMotionDetector/Motion"
#: WS-Security tolerance for the Created time, as cameras commonly allow
MAX_CLOCK_DIFFERENCE = timedelta(minutes=5)
#: operations a camera answers without credentials (ONVIF Core: PRE_AUTH, here just the clock)
UNAUTHENTICATED = frozenset({"GetSystemDateAndTime"})


@dataclass(frozen=True)
class OnvifProfile:
    """A media profile: ``encoding`` is ``H264`` or ``JPEG``; ``stream_uri`` None → the device's."""

    token: str
    width: int
    height: int
    encoding: str = "H264"
    fps: int = 10
    stream_uri: str | None = None


@dataclass(frozen=True)
class OnvifEvent:
    topic: str
    active: bool
    time: datetime
    source: str = "VideoSourceToken"
    #: ``Initialized`` for the state a camera announces to a new subscription, else ``Changed``
    operation: str = "Changed"


@dataclass
class _Subscription:
    events: asyncio.Queue[OnvifEvent] = field(default_factory=asyncio.Queue)


def default_profiles() -> tuple[OnvifProfile, ...]:
    return (
        OnvifProfile("main", 1280, 720),
        OnvifProfile("sub", 640, 360),
        OnvifProfile("mjpeg", 1280, 720, encoding="JPEG"),
    )


class OnvifDevice:
    """The responder; an async context manager that listens on 127.0.0.1 (``port`` 0: any)."""

    def __init__(
        self,
        *,
        stream_uri: str = "rtsp://127.0.0.1:8554/stream",
        username: str = "admin",
        password: str = "admin-password",
        profiles: tuple[OnvifProfile, ...] | None = None,
        clock_skew: timedelta = timedelta(0),
        events: bool = True,
        snapshot_jpeg: bytes | None = None,
        port: int = 0,
        manufacturer: str = "alprbox test kit",
        model: str = "Responder 1",
        initial_motion: bool | None = None,
    ) -> None:
        self.stream_uri = stream_uri
        self.username = username
        self.password = password
        self.profiles = default_profiles() if profiles is None else profiles
        self.clock_skew = clock_skew
        self.events_enabled = events
        self.snapshot_jpeg = snapshot_jpeg if snapshot_jpeg is not None else _grey_jpeg()
        self.manufacturer = manufacturer
        self.model = model
        self.port = port
        #: the motion state announced (``Initialized``) to every new subscription, as ONVIF
        #: cameras with a motion rule do; None: the device announces nothing
        self.motion_state = initial_motion
        self.calls: list[str] = []
        self.auth_failures = 0
        self._subscriptions: dict[str, _Subscription] = {}
        self._runner: web.AppRunner | None = None
        self._digest_nonces: set[str] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def device_service(self) -> str:
        return f"{self.base_url}/onvif/device_service"

    def now(self) -> datetime:
        """The device's clock (the real one plus ``clock_skew``)."""
        return datetime.now(UTC) + self.clock_skew

    def emit_motion(self, active: bool, topic: str = MOTION_TOPIC) -> None:
        """Queue a motion (or other topic) event for every pull-point subscription."""
        event = OnvifEvent(topic, active, self.now())
        if topic == MOTION_TOPIC:
            self.motion_state = active
        for subscription in self._subscriptions.values():
            subscription.events.put_nowait(event)

    def drop_subscriptions(self) -> None:
        """Forget every pull-point subscription, as a camera whose event service restarts
        does: the next PullMessages of each subscriber gets a SOAP fault."""
        self._subscriptions.clear()

    @property
    def subscriptions(self) -> int:
        return len(self._subscriptions)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/onvif/{service:.*}", self._soap)
        app.router.add_get("/snapshot.jpg", self._snapshot)
        # A pending PullMessages long poll must not hold up stopping the device.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> OnvifDevice:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- SOAP --------------------------------------------------------------------------------

    async def _soap(self, request: web.Request) -> web.Response:
        try:
            root = etree.fromstring(await request.read())
        except etree.ParseError:
            return _fault("s:Sender", "ter:WellFormed", "request is not XML", status=400)
        body = root.find(f"{{{SOAP12}}}Body")
        if body is None or len(body) == 0:
            return _fault("s:Sender", "ter:WellFormed", "no SOAP body", status=400)
        operation_element = body[0]
        operation = operation_element.tag.rpartition("}")[2]
        self.calls.append(operation)
        if operation not in UNAUTHENTICATED and not self._authorized(root):
            self.auth_failures += 1
            return _fault("s:Sender", "ter:NotAuthorized", "Sender not Authorized", status=400)
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            return _fault(
                "s:Receiver", "ter:ActionNotSupported", f"{operation} is not supported", 400
            )
        result: str = await handler(operation_element, request)
        return _envelope(result)

    def _authorized(self, root: Any) -> bool:
        token = root.find(f".//{{{WSSE}}}UsernameToken")
        if token is None:
            return False
        user = token.findtext(f"{{{WSSE}}}Username")
        password = token.find(f"{{{WSSE}}}Password")
        nonce = token.findtext(f"{{{WSSE}}}Nonce")
        created = token.findtext(f"{{{WSU}}}Created")
        if user != self.username or password is None or not nonce or not created:
            return False
        if not str(password.get("Type", "")).endswith("#PasswordDigest"):
            return False  # plain-text passwords are not accepted, as on real cameras
        try:
            nonce_bytes = base64.b64decode(nonce)
            when = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError:
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if abs(when - self.now()) > MAX_CLOCK_DIFFERENCE:
            return False
        expected = base64.b64encode(
            hashlib.sha1(nonce_bytes + created.encode() + self.password.encode()).digest()
        ).decode()
        return secrets.compare_digest(expected, (password.text or "").strip())

    async def _op_GetSystemDateAndTime(self, _op: Any, _req: web.Request) -> str:
        now = self.now()
        return (
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
            "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
            "<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone><tt:UTCDateTime>"
            f"<tt:Time><tt:Hour>{now.hour}</tt:Hour><tt:Minute>{now.minute}</tt:Minute>"
            f"<tt:Second>{now.second}</tt:Second></tt:Time>"
            f"<tt:Date><tt:Year>{now.year}</tt:Year><tt:Month>{now.month}</tt:Month>"
            f"<tt:Day>{now.day}</tt:Day></tt:Date>"
            "</tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        )

    def _services(self) -> list[tuple[str, str]]:
        services = [
            (NS["tds"], f"{self.base_url}/onvif/device_service"),
            (NS["trt"], f"{self.base_url}/onvif/media_service"),
        ]
        if self.events_enabled:
            services.append((NS["tev"], f"{self.base_url}/onvif/events_service"))
        return services

    async def _op_GetServices(self, _op: Any, _req: web.Request) -> str:
        items = "".join(
            f"<tds:Service><tds:Namespace>{ns}</tds:Namespace><tds:XAddr>{xaddr}</tds:XAddr>"
            "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version>"
            "</tds:Service>"
            for ns, xaddr in self._services()
        )
        return f"<tds:GetServicesResponse>{items}</tds:GetServicesResponse>"

    async def _op_GetCapabilities(self, _op: Any, _req: web.Request) -> str:
        events = (
            f"<tt:Events><tt:XAddr>{self.base_url}/onvif/events_service</tt:XAddr>"
            "<tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>"
            "<tt:WSPullPointSupport>true</tt:WSPullPointSupport>"
            "<tt:WSPausableSubscriptionManagerInterfaceSupport>false"
            "</tt:WSPausableSubscriptionManagerInterfaceSupport></tt:Events>"
            if self.events_enabled
            else ""
        )
        return (
            "<tds:GetCapabilitiesResponse><tds:Capabilities>"
            f"<tt:Device><tt:XAddr>{self.base_url}/onvif/device_service</tt:XAddr></tt:Device>"
            f"{events}"
            f"<tt:Media><tt:XAddr>{self.base_url}/onvif/media_service</tt:XAddr>"
            "<tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast>"
            "<tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP>"
            "</tt:StreamingCapabilities></tt:Media>"
            "</tds:Capabilities></tds:GetCapabilitiesResponse>"
        )

    async def _op_GetDeviceInformation(self, _op: Any, _req: web.Request) -> str:
        return (
            "<tds:GetDeviceInformationResponse>"
            f"<tds:Manufacturer>{escape(self.manufacturer)}</tds:Manufacturer>"
            f"<tds:Model>{escape(self.model)}</tds:Model>"
            "<tds:FirmwareVersion>1.0.0</tds:FirmwareVersion>"
            "<tds:SerialNumber>TK-0001</tds:SerialNumber>"
            "<tds:HardwareId>responder</tds:HardwareId>"
            "</tds:GetDeviceInformationResponse>"
        )

    async def _op_GetProfiles(self, _op: Any, _req: web.Request) -> str:
        return (
            "<trt:GetProfilesResponse>"
            + "".join(_profile_xml(p) for p in self.profiles)
            + "</trt:GetProfilesResponse>"
        )

    def _profile(self, op: Any) -> OnvifProfile | None:
        token = op.findtext(f"{{{NS['trt']}}}ProfileToken")
        return next((p for p in self.profiles if p.token == token), None)

    async def _op_GetStreamUri(self, op: Any, _req: web.Request) -> str:
        profile = self._profile(op)
        if profile is None:
            raise web.HTTPBadRequest(
                body=_fault_xml("s:Sender", "ter:InvalidArgVal", "no such profile"),
                content_type="application/soap+xml",
            )
        uri = profile.stream_uri or self.stream_uri
        return f"<trt:GetStreamUriResponse>{_media_uri(uri)}</trt:GetStreamUriResponse>"

    async def _op_GetSnapshotUri(self, op: Any, _req: web.Request) -> str:
        uri = f"{self.base_url}/snapshot.jpg"
        return f"<trt:GetSnapshotUriResponse>{_media_uri(uri)}</trt:GetSnapshotUriResponse>"

    async def _op_CreatePullPointSubscription(self, _op: Any, _req: web.Request) -> str:
        if not self.events_enabled:
            raise web.HTTPBadRequest(
                body=_fault_xml("s:Receiver", "ter:ActionNotSupported", "no events"),
                content_type="application/soap+xml",
            )
        key = uuid.uuid4().hex[:12]
        subscription = self._subscriptions[key] = _Subscription()
        now = self.now()
        if self.motion_state is not None:  # ONVIF property events start with the current state
            subscription.events.put_nowait(
                OnvifEvent(MOTION_TOPIC, self.motion_state, now, operation="Initialized")
            )
        return (
            "<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>"
            f"<wsa:Address>{self.base_url}/onvif/pullpoint/{key}</wsa:Address>"
            "</tev:SubscriptionReference>"
            f"<wsnt:CurrentTime>{_iso(now)}</wsnt:CurrentTime>"
            f"<wsnt:TerminationTime>{_iso(now + timedelta(minutes=1))}</wsnt:TerminationTime>"
            "</tev:CreatePullPointSubscriptionResponse>"
        )

    def _subscription(self, request: web.Request) -> _Subscription:
        key = request.path.rsplit("/", 1)[-1]
        subscription = self._subscriptions.get(key)
        if subscription is None:
            raise web.HTTPBadRequest(
                body=_fault_xml("s:Sender", "ter:InvalidArgVal", "unknown subscription"),
                content_type="application/soap+xml",
            )
        return subscription

    async def _op_PullMessages(self, op: Any, request: web.Request) -> str:
        subscription = self._subscription(request)
        limit = int(op.findtext(f"{{{NS['tev']}}}MessageLimit") or 10)
        timeout = _duration_seconds(op.findtext(f"{{{NS['tev']}}}Timeout") or "PT1S")
        events: list[OnvifEvent] = []
        with contextlib.suppress(TimeoutError):
            # Long poll: answer as soon as something happens, or empty after the timeout.
            events.append(await asyncio.wait_for(subscription.events.get(), min(timeout, 5)))
        while len(events) < limit and not subscription.events.empty():
            events.append(subscription.events.get_nowait())
        now = self.now()
        return (
            "<tev:PullMessagesResponse>"
            f"<tev:CurrentTime>{_iso(now)}</tev:CurrentTime>"
            f"<tev:TerminationTime>{_iso(now + timedelta(minutes=1))}</tev:TerminationTime>"
            + "".join(_notification_xml(e) for e in events)
            + "</tev:PullMessagesResponse>"
        )

    async def _op_Renew(self, _op: Any, request: web.Request) -> str:
        self._subscription(request)
        now = self.now()
        return (
            "<wsnt:RenewResponse>"
            f"<wsnt:TerminationTime>{_iso(now + timedelta(minutes=1))}</wsnt:TerminationTime>"
            f"<wsnt:CurrentTime>{_iso(now)}</wsnt:CurrentTime></wsnt:RenewResponse>"
        )

    async def _op_Unsubscribe(self, _op: Any, request: web.Request) -> str:
        self._subscription(request)
        self._subscriptions.pop(request.path.rsplit("/", 1)[-1], None)
        return "<wsnt:UnsubscribeResponse/>"

    # -- snapshot over HTTP Digest -----------------------------------------------------------

    async def _snapshot(self, request: web.Request) -> web.Response:
        if not self._digest_ok(request):
            nonce = secrets.token_hex(16)
            self._digest_nonces.add(nonce)
            return web.Response(
                status=401,
                headers={
                    "WWW-Authenticate": f'Digest realm="responder", qop="auth", nonce="{nonce}", '
                    "algorithm=MD5"
                },
            )
        self.calls.append("snapshot.jpg")
        return web.Response(body=self.snapshot_jpeg, content_type="image/jpeg")

    def _digest_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Digest "):
            return False
        fields = _parse_digest(header[len("Digest ") :])
        if (
            fields.get("username") != self.username
            or fields.get("nonce") not in self._digest_nonces
        ):
            return False
        ha1 = _md5(f"{self.username}:{fields.get('realm', '')}:{self.password}")
        ha2 = _md5(f"{request.method}:{fields.get('uri', '')}")
        if fields.get("qop"):
            expected = _md5(
                f"{ha1}:{fields['nonce']}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:"
                f"{fields['qop']}:{ha2}"
            )
        else:
            expected = _md5(f"{ha1}:{fields['nonce']}:{ha2}")
        return secrets.compare_digest(expected, fields.get("response", ""))


# -- XML helpers -----------------------------------------------------------------------------


def _envelope(body: str, status: int = 200) -> web.Response:
    text = (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope {_NSDECL}><s:Body>{body}'
        "</s:Body></s:Envelope>"
    )
    return web.Response(text=text, status=status, content_type="application/soap+xml")


def _fault_xml(code: str, subcode: str, reason: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope {_NSDECL}><s:Body><s:Fault>'
        f"<s:Code><s:Value>{code}</s:Value><s:Subcode><s:Value>{subcode}</s:Value></s:Subcode>"
        f'</s:Code><s:Reason><s:Text xml:lang="en">{escape(reason)}</s:Text></s:Reason>'
        "</s:Fault></s:Body></s:Envelope>"
    )


def _fault(code: str, subcode: str, reason: str, status: int) -> web.Response:
    return web.Response(
        text=_fault_xml(code, subcode, reason), status=status, content_type="application/soap+xml"
    )


def _profile_xml(p: OnvifProfile) -> str:
    h264 = (
        "<tt:H264><tt:GovLength>20</tt:GovLength><tt:H264Profile>Main</tt:H264Profile></tt:H264>"
        if p.encoding == "H264"
        else ""
    )
    return (
        f'<trt:Profiles token="{p.token}" fixed="true"><tt:Name>{p.token}</tt:Name>'
        '<tt:VideoSourceConfiguration token="vsc"><tt:Name>vsc</tt:Name>'
        "<tt:UseCount>1</tt:UseCount><tt:SourceToken>VideoSourceToken</tt:SourceToken>"
        f'<tt:Bounds x="0" y="0" width="{p.width}" height="{p.height}"/>'
        "</tt:VideoSourceConfiguration>"
        f'<tt:VideoEncoderConfiguration token="vec-{p.token}"><tt:Name>{p.token}</tt:Name>'
        f"<tt:UseCount>1</tt:UseCount><tt:Encoding>{p.encoding}</tt:Encoding>"
        f"<tt:Resolution><tt:Width>{p.width}</tt:Width><tt:Height>{p.height}</tt:Height>"
        "</tt:Resolution><tt:Quality>5</tt:Quality>"
        f"<tt:RateControl><tt:FrameRateLimit>{p.fps}</tt:FrameRateLimit>"
        "<tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>4096</tt:BitrateLimit>"
        f"</tt:RateControl>{h264}"
        "<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0"
        "</tt:IPv4Address></tt:Address><tt:Port>0</tt:Port><tt:TTL>1</tt:TTL>"
        "<tt:AutoStart>false</tt:AutoStart></tt:Multicast>"
        "<tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration>"
        "</trt:Profiles>"
    )


def _media_uri(uri: str) -> str:
    return (
        f"<trt:MediaUri><tt:Uri>{escape(uri)}</tt:Uri>"
        "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
        "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>"
        "<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri>"
    )


def _notification_xml(event: OnvifEvent) -> str:
    state = "true" if event.active else "false"
    return (
        "<wsnt:NotificationMessage>"
        f'<wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">'
        f"{escape(event.topic)}</wsnt:Topic><wsnt:Message>"
        f'<tt:Message UtcTime="{_iso(event.time)}" '
        f'PropertyOperation="{escape(event.operation)}">'
        f'<tt:Source><tt:SimpleItem Name="VideoSourceConfigurationToken" '
        f'Value="{escape(event.source)}"/></tt:Source>'
        f'<tt:Data><tt:SimpleItem Name="IsMotion" Value="{state}"/></tt:Data>'
        "</tt:Message></wsnt:Message></wsnt:NotificationMessage>"
    )


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration_seconds(text: str) -> float:
    """Seconds of a simple xsd:duration such as PT5S or PT1M (enough for PullMessages)."""
    text = text.strip().upper()
    if not text.startswith("PT"):
        return 1.0
    seconds = 0.0
    number = ""
    for char in text[2:]:
        if char.isdigit() or char == ".":
            number += char
        elif number:
            seconds += float(number) * {"H": 3600, "M": 60, "S": 1}.get(char, 0)
            number = ""
    return seconds


def _parse_digest(value: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in _split_commas(value):
        key, _, raw = part.strip().partition("=")
        fields[key.strip().lower()] = raw.strip().strip('"')
    return fields


def _split_commas(value: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # HTTP Digest is MD5 by its spec


def _grey_jpeg() -> bytes:
    import cv2
    import numpy as np

    image = np.full((360, 640, 3), 90, np.uint8)
    image[150:210, 260:380] = (255, 255, 255)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return bytes(data.tobytes())
