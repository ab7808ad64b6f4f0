"""The box's devices as rows for the live page (issue 8): what an installer checks on a trailer.

Built from :meth:`appliance.hardware.BoxHardware.status`, which never holds a position: the GPS
row says whether there is a fix and how good it is, not where the box is.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class HardwareRow(NamedTuple):
    name: str
    value: str
    alarm: bool = False


def _gps(gps: dict[str, Any]) -> HardwareRow:
    parts = [gps["state"]]
    if gps.get("satellites") is not None:
        parts.append(f"{gps['satellites']} satellites")
    if gps.get("hdop") is not None:
        parts.append(f"HDOP {gps['hdop']}")
    if gps.get("fix_age_seconds") is not None:
        parts.append(f"fix {gps['fix_age_seconds']:g} s old")
    if gps.get("corrupt"):
        parts.append(f"{gps['corrupt']} corrupt lines dropped")
    if gps.get("error"):
        parts.append(str(gps["error"]))
    return HardwareRow(f"GPS ({gps['source']})", " · ".join(parts), gps["state"] != "fix")


def hardware_rows(status: dict[str, Any] | None) -> list[HardwareRow]:
    if status is None:
        return []
    rows: list[HardwareRow] = []
    tamper = status.get("tamper")
    if tamper is not None:
        open_ = tamper["state"] != "closed"
        alarms = f" ({tamper['alarms']} alarms since start)" if tamper["alarms"] else ""
        rows.append(HardwareRow("Tamper switch", f"{tamper['state']}{alarms}", open_))
    if "gps" in status:
        rows.append(_gps(status["gps"]))
    for name in ("illuminator", "relay"):
        if name in status:
            rows.append(HardwareRow(name.capitalize(), str(status[name])))
    for name, reading in (status.get("sensors") or {}).items():
        value = reading["error"] if reading["value"] is None else (
            f"{reading['value']:g} {reading['unit']}".strip() + (" (low)" if reading["low"] else "")
        )
        rows.append(HardwareRow(name, str(value), bool(reading["low"] or reading["error"])))
    uplink = status.get("uplink")
    if uplink is not None:
        text = f"{uplink['state']} ({uplink['target']})"
        if uplink["state"] == "unreachable":
            text += "; reads are stored here and forwarded when it is back"
        rows.append(HardwareRow("Uplink", text, uplink["state"] == "unreachable"))
    for key, part in status.items():
        if key.startswith("camera ") and isinstance(part, dict):
            lights = part.get("lights") or {}
            text = (f"position on {part.get('frames_with_position', 0)} frames, none on "
                    f"{part.get('frames_without_position', 0)}")
            if lights:
                text += f" · IR lamp {lights['lamp']} ({lights['reason']})"
            rows.append(HardwareRow(key.capitalize(), text))
    rows.extend(HardwareRow("Problem", p, True) for p in status.get("problems", []))
    return rows
