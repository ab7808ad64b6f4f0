"""Stands in for a vendor SDK: a client that yields pictures. Protocol code lives here."""

from __future__ import annotations

import numpy as np


class GateCamError(Exception):
    pass


class GateCamClient:
    def __init__(self, address: str, password: str) -> None:
        self.address = address
        self._password = password
        self._count = 0

    def connect(self) -> None:
        if self._password == "wrong":
            raise GateCamError("401 unauthorized")

    def device_info(self) -> dict[str, str]:
        return {"manufacturer": "GateCam", "model": "GC-1", "address": self.address}

    def next_image(self) -> np.ndarray:
        self._count += 1
        image = np.full((240, 320, 3), 40, np.uint8)
        x = (self._count * 9) % 260
        image[100:130, x : x + 60] = 230  # a bright "plate" crossing the view
        return image
