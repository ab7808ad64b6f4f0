"""Synthetic US licence plates for training the OCR (and, weakly, the state classifier).

    python training/synth_plates.py --out /tmp/synth --count 64 [--seed 1]

writes a few samples (PNG + ``labels.csv``) to look at; training imports :func:`make_sample`.

A rendered plate is far too easy for a model (NOTES.md), so each sample is a plate *style*
(background, colours, state name, slogan, frame, bolts, stickers, stacked county characters)
with a main text drawn from the US shapes of the real crop set, then degraded hard: the crop
box jitters like a detector's, perspective, blur, low resolution, glare, shadow, noise, JPEG and
partial occlusion. The label holds only the large main characters, as OpenALPR's ground truth
does (the stacked small characters of e.g. Wyoming and North Carolina plates are left out).

Fonts: Debian ``fonts-dejavu``, ``fonts-liberation``, ``fonts-bebas-neue`` and the PyPI
``fontpkg-*`` families (Oswald, Barlow Condensed, Roboto Condensed, Archivo Narrow, Fjalla One),
all under open font licences; whichever of them is installed is used.
"""

from __future__ import annotations

import argparse
import functools
import glob
import random
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
DIGITS = "0123456789"
#: base render size of a plate (the real crops are ~320×160)
PLATE_W, PLATE_H = 320, 160

STATES: dict[str, str] = {
    "al": "Alabama", "ak": "Alaska", "az": "Arizona", "ar": "Arkansas", "ca": "California",
    "co": "Colorado", "ct": "Connecticut", "de": "Delaware", "dc": "Washington, D.C.",
    "fl": "Florida", "ga": "Georgia", "hi": "Hawaii", "id": "Idaho", "il": "Illinois",
    "in": "Indiana", "ia": "Iowa", "ks": "Kansas", "ky": "Kentucky", "la": "Louisiana",
    "me": "Maine", "md": "Maryland", "ma": "Massachusetts", "mi": "Michigan", "mn": "Minnesota",
    "ms": "Mississippi", "mo": "Missouri", "mt": "Montana", "ne": "Nebraska", "nv": "Nevada",
    "nh": "New Hampshire", "nj": "New Jersey", "nm": "New Mexico", "ny": "New York",
    "nc": "North Carolina", "nd": "North Dakota", "oh": "Ohio", "ok": "Oklahoma",
    "or": "Oregon", "pa": "Pennsylvania", "ri": "Rhode Island", "sc": "South Carolina",
    "sd": "South Dakota", "tn": "Tennessee", "tx": "Texas", "ut": "Utah", "vt": "Vermont",
    "va": "Virginia", "wa": "Washington", "wv": "West Virginia", "wi": "Wisconsin",
    "wy": "Wyoming",
}  # fmt: skip
SLOGANS = [
    "SUNSHINE STATE", "THE FIRST STATE", "GARDEN STATE", "LIVE FREE OR DIE", "FIRST IN FLIGHT",
    "Land of Lincoln", "The Silver State", "America's Dairyland", "Ocean State", "Famous Potatoes",
    "Sportsman's Paradise", "DMV.CA.GOV", "Great Faces. Great Places.", "Lone Star State",
    "Green Mountain State", "Empire State", "Evergreen State", "The Natural State", "VACATIONLAND",
    "Wild, Wonderful", "Land of Enchantment", "10,000 Lakes", "Peach State", "Grand Canyon State",
    "Keystone State", "Heart of Dixie", "Aloha State", "Treasure State", "Centennial State",
    "Volunteer State", "Show Me State", "Pioneer State", "Beehive State", "Old Line State",
    "Taxation Without Representation", "Celebrating Statehood", "Constitution State", "",
]  # fmt: skip

# Character shapes ("A" letter, "9" digit) and how often each occurs among real US plates: the
# same table as appliance/_recognition/us_plates.py (from the crop set), plus rarer shapes so
# the model does not learn that they cannot happen.
EXTRA_SHAPES = {"AAA9A99": 2, "9A99999": 2, "AA99999": 2, "99A9999": 2, "AAA": 1, "9AAA": 1,
                "AA9A99": 2, "A99AA9": 1, "99AAA9": 1, "AAAA999": 2, "99999AA": 1}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Sample:
    """One training image: BGR ``uint8``, the main plate text, the state code (lower case)."""

    image: np.ndarray
    text: str
    state: str


@functools.cache
def fonts() -> tuple[str, ...]:
    """Paths of the bold, plate-like fonts that are installed here."""
    patterns = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Regular.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationMono-Bold.ttf",
        "/usr/share/fonts/opentype/bebas-neue/BebasNeue-Regular.otf",
        "/usr/share/fonts/opentype/bebas-neue/BebasNeue-Bold.otf",
        "/usr/share/fonts/opentype/bebas-neue/BebasNeue-Book.otf",
    ]
    site = sysconfig.get_paths()["purelib"]
    for family in (
        "oswald",
        "barlow_condensed",
        "roboto_condensed",
        "archivo_narrow",
        "fjalla_one",
    ):
        patterns.append(f"{site}/fontpkg_{family}/files/*.ttf")
    found: list[str] = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            if "Italic" in path or "Thin" in path or "Light" in path:
                continue
            found.append(path)
    if not found:
        raise RuntimeError("no fonts found: apt-get install fonts-dejavu (or fonts-bebas-neue)")
    return tuple(found)


@functools.cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(path, size)
    # Variable fonts (Oswald, Roboto Condensed …) default to their lightest weight.
    try:
        axes = font.get_variation_axes()
        font.set_variation_by_axes([min(axis["maximum"], 650) for axis in axes])  # type: ignore[misc,index]
    except (OSError, AttributeError):
        pass
    return font


@functools.cache
def _shapes() -> tuple[list[str], list[float]]:
    here = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(here))
    from appliance._recognition.us_plates import SHAPE_COUNTS

    table = {**EXTRA_SHAPES, **SHAPE_COUNTS}
    return list(table), [float(n) for n in table.values()]


def random_text(rng: random.Random) -> str:
    shapes, weights = _shapes()
    pattern = rng.choices(shapes, weights)[0]
    if rng.random() < 0.08:  # any length 2..8: vanity and odd formats
        pattern = "".join(rng.choice("A9") for _ in range(rng.randint(2, 8)))
    return "".join(rng.choice(DIGITS if c == "9" else LETTERS) for c in pattern)


def _colour(rng: random.Random, dark: bool) -> tuple[int, int, int]:
    if dark:
        palette = [(20, 30, 110), (10, 10, 10), (150, 20, 25), (20, 90, 40), (90, 20, 40),
                   (30, 60, 140), (60, 60, 60), (0, 70, 100)]  # fmt: skip
    else:
        palette = [(250, 250, 250), (235, 240, 250), (250, 240, 190), (245, 225, 120),
                   (215, 230, 245), (240, 235, 220), (225, 245, 230), (255, 255, 255)]  # fmt: skip
    base = rng.choice(palette)
    return tuple(int(np.clip(c + rng.randint(-20, 20), 0, 255)) for c in base)  # type: ignore[return-value]


def _background(rng: random.Random, light: tuple[int, int, int]) -> Image.Image:
    top = np.array(light, np.float32)
    bottom = np.array(_colour(rng, dark=False), np.float32)
    if rng.random() < 0.3:  # sky/scene gradients (Nevada, Alaska …)
        bottom = np.array(_colour(rng, dark=rng.random() < 0.3), np.float32) * 0.5 + top * 0.5
    ramp = np.linspace(0, 1, PLATE_H, dtype=np.float32)[:, None, None]
    array = top * (1 - ramp) + bottom * ramp
    array = np.broadcast_to(array, (PLATE_H, PLATE_W, 3)).copy()
    image = Image.fromarray(array.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(0, 4)):  # faint scenery: mountains, suns, logos
        colour = _colour(rng, dark=rng.random() < 0.5)
        faint = tuple(int(0.35 * c + 0.65 * a) for c, a in zip(colour, light, strict=True))
        x, y = rng.randint(-40, PLATE_W), rng.randint(0, PLATE_H)
        r = rng.randint(10, 70)
        if rng.random() < 0.5:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=faint)
        else:
            draw.polygon([(x - 2 * r, PLATE_H), (x, y), (x + 2 * r, PLATE_H)], fill=faint)
    return image


def _fit_text(
    draw: ImageDraw.ImageDraw, text: str, font_path: str, box_w: int, box_h: int
) -> tuple[ImageFont.FreeTypeFont, int, int]:
    """The largest font size whose text fits ``box_w × box_h``; returns font and text size."""
    size = box_h
    while size > 6:
        font = _font(font_path, size)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left <= box_w and bottom - top <= box_h:
            return font, right - left, bottom - top
        size = int(size * 0.9)
    font = _font(font_path, 6)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return font, right - left, bottom - top


def _draw_main(
    rng: random.Random, plate: Image.Image, text: str, colour: tuple[int, int, int]
) -> None:
    """Main characters, stretched to the plate's text band, with an optional gap/separator."""
    font_path = rng.choice(fonts())
    band_top = rng.randint(32, 46)
    band_h = rng.randint(68, 92)
    left_margin = rng.randint(14, 40)
    right_margin = rng.randint(14, 40)
    stacked = rng.random() < 0.15
    if stacked:  # a stacked pair of small characters at one end is not part of the label
        side_w = 26
        if rng.random() < 0.5:
            left_margin += side_w
        else:
            right_margin += side_w
    # "emblem": a state graphic between the groups (Florida's orange, Maryland's flag, West
    # Virginia's outline, Virginia's dot), which the first model read as a character.
    sep = (
        rng.choices(["", " ", "-", "·", "  ", "emblem"], [4, 3, 2, 1, 1, 3])[0]
        if len(text) >= 5
        else ""
    )
    cut = rng.randint(2, len(text) - 2) if sep and len(text) >= 4 else 0
    emblem = sep == "emblem"
    if emblem:
        sep = rng.choice(["  ", "   "])
    shown = text[:cut] + sep + text[cut:] if cut else text
    # Draw on a transparent layer at natural width, then squeeze it into the band: plate fonts
    # are tall and narrow, and a condensed look matters more than the exact family.
    layer_font = _font(font_path, 120)
    probe = ImageDraw.Draw(plate)
    left, top, right, bottom = probe.textbbox((0, 0), shown, font=layer_font)
    layer = Image.new("L", (right - left + 8, bottom - top + 8), 0)
    ImageDraw.Draw(layer).text((4 - left, 4 - top), shown, font=layer_font, fill=255)
    box_w = PLATE_W - left_margin - right_margin
    width = min(box_w, int(layer.width * band_h / layer.height * rng.uniform(0.75, 1.25)))
    if len(text) <= 3:
        width = min(width, int(box_w * 0.6))
    layer = layer.resize((max(8, width), band_h), Image.Resampling.BILINEAR)
    x = left_margin + (box_w - layer.width) // 2
    fill = Image.new("RGB", layer.size, colour)
    plate.paste(fill, (x, band_top), layer)
    if emblem and cut:
        # the gap's centre in the squeezed layer, from the natural-width text boxes
        before = probe.textbbox((0, 0), text[:cut], font=layer_font)[2]
        after = probe.textbbox((0, 0), text[:cut] + sep, font=layer_font)[2]
        scale = layer.width / max(1, right - left + 8)
        cx = x + int(((before + after) / 2 - left + 4) * scale)
        _draw_emblem(rng, plate, cx, band_top + band_h // 2, band_h, colour)
    if stacked:
        small = _font(font_path, 26)
        draw = ImageDraw.Draw(plate)
        sx = left_margin - 30 if left_margin > right_margin else PLATE_W - right_margin + 6
        for i, char in enumerate(rng.choice([DIGITS, LETTERS]) for _ in range(2)):
            draw.text((sx, band_top + 4 + i * 38), rng.choice(char), font=small, fill=colour)


def _draw_emblem(
    rng: random.Random,
    plate: Image.Image,
    cx: int,
    cy: int,
    band_h: int,
    text_colour: tuple[int, int, int],
) -> None:
    """A small state graphic centred at ``(cx, cy)``: a dot, a disc with a leaf, a flag-like
    box or a jagged outline, in the text colour or a bright one of its own."""
    draw = ImageDraw.Draw(plate)
    size = int(band_h * rng.uniform(0.15, 0.6))
    r = max(3, size // 2)
    colour = text_colour if rng.random() < 0.3 else tuple(rng.randint(0, 255) for _ in range(3))
    kind = rng.choice(["dot", "disc", "box", "outline"])
    if kind == "dot":
        r = max(2, r // 2)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif kind == "disc":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
        leaf = (rng.randint(0, 120), rng.randint(100, 200), rng.randint(0, 120))
        draw.ellipse((cx - r // 3, cy - r - r // 3, cx + r // 2, cy - r + r // 4), fill=leaf)
    elif kind == "box":
        h = int(r * rng.uniform(0.9, 1.6))
        draw.rectangle((cx - r, cy - h, cx + r, cy + h), fill=colour)
        other = tuple(rng.randint(0, 255) for _ in range(3))
        draw.rectangle((cx - r, cy - h, cx, cy), fill=other)
    else:
        points = [
            (cx + rng.uniform(-r, r), cy + rng.uniform(-r * 1.4, r * 1.4))
            for _ in range(rng.randint(5, 8))
        ]
        draw.polygon(points, fill=colour)


def _draw_extras(rng: random.Random, plate: Image.Image, state: str) -> None:
    draw = ImageDraw.Draw(plate)
    header = STATES[state]
    style = rng.random()
    header = header.upper() if style < 0.5 else header
    colour = _colour(rng, dark=True)
    font, tw, th = _fit_text(
        draw, header, rng.choice(fonts()), rng.randint(150, 290), rng.randint(16, 30)
    )
    draw.text(((PLATE_W - tw) // 2, rng.randint(2, 8)), header, font=font, fill=colour)
    slogan = rng.choice(SLOGANS)
    if slogan:
        font, tw, th = _fit_text(
            draw, slogan, rng.choice(fonts()), rng.randint(120, 280), rng.randint(10, 20)
        )
        draw.text(
            ((PLATE_W - tw) // 2, PLATE_H - th - rng.randint(4, 12)),
            slogan,
            font=font,
            fill=_colour(rng, dark=True),
        )
    for _ in range(rng.choices([0, 1, 2], [2, 3, 2])[0]):  # registration stickers
        w, h = rng.randint(22, 40), rng.randint(16, 28)
        x = rng.choice([rng.randint(4, 30), rng.randint(PLATE_W - 70, PLATE_W - w - 4)])
        y = rng.choice([rng.randint(2, 12), rng.randint(PLATE_H - 40, PLATE_H - h - 2)])
        sticker = _colour(rng, dark=rng.random() < 0.5)
        draw.rectangle((x, y, x + w, y + h), fill=sticker)
        label = rng.choice(["JAN", "MAY", "DEC", "SEP", "25", "07", "12", "2024", "MAR"])
        draw.text(
            (x + 3, y + 2), label, font=_font(fonts()[0], max(8, h - 8)), fill=(255, 255, 255)
        )
    if rng.random() < 0.7:  # bolts
        for bx in (rng.randint(60, 90), rng.randint(PLATE_W - 90, PLATE_W - 60)):
            by = rng.randint(10, 22)
            shade = rng.randint(80, 200)
            draw.ellipse((bx - 6, by - 6, bx + 6, by + 6), fill=(shade, shade, shade))


def _add_frame(rng: random.Random, plate: np.ndarray) -> np.ndarray:
    """A dealer/chrome frame around the plate, sometimes with text along the bottom."""
    thick = rng.randint(4, 16)
    bottom = thick + rng.randint(0, 14)
    shade = rng.choice([rng.randint(10, 60), rng.randint(150, 230)])
    framed = cv2.copyMakeBorder(plate, thick, bottom, thick, thick, cv2.BORDER_CONSTANT,
                                value=(shade, shade, shade))  # fmt: skip
    if bottom > 14 and rng.random() < 0.6:
        text = rng.choice(["TOYOTA OF OAKLAND", "HONDA", "SAN JOSE FORD", "BMW", "CARMAX"])
        colour = (255, 255, 255) if shade < 100 else (30, 30, 30)
        cv2.putText(framed, text, (framed.shape[1] // 4, framed.shape[0] - 4),
                    cv2.FONT_HERSHEY_SIMPLEX, (bottom - 4) / 30, colour, 1)  # fmt: skip
    return framed


def render_plate(rng: random.Random, text: str, state: str) -> np.ndarray:
    """A clean plate as BGR ``uint8``, ``PLATE_H × PLATE_W`` or a little larger with a frame."""
    if rng.random() < 0.12:  # dark plates with light text (Delaware, Indiana specials …)
        light = _colour(rng, dark=True)
        text_colour = _colour(rng, dark=False)
    else:
        light = _colour(rng, dark=False)
        text_colour = _colour(rng, dark=True)
    plate = _background(rng, light)
    _draw_extras(rng, plate, state)
    _draw_main(rng, plate, text, text_colour)
    array = cv2.cvtColor(np.asarray(plate), cv2.COLOR_RGB2BGR)
    if rng.random() < 0.4:
        array = _add_frame(rng, array)
    return array


def _scene(rng: random.Random, h: int, w: int) -> np.ndarray:
    """Car-body-like surroundings: a flat colour with a gradient and coarse texture."""
    base = np.array([rng.randint(0, 255) for _ in range(3)], np.float32)
    ramp = np.linspace(rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.2), 8, dtype=np.float32)
    coarse = base[None, None, :] * ramp[:, None, None] * np.ones((1, 16, 1), np.float32)
    coarse += np.float32(rng.uniform(2, 30)) * np.random.default_rng(
        rng.randint(0, 2**31)
    ).standard_normal((8, 16, 3)).astype(np.float32)
    scene = cv2.resize(
        np.clip(coarse, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR
    )
    return np.asarray(scene, dtype=np.uint8)


def degrade(
    rng: random.Random, plate: np.ndarray, out_w: int, out_h: int, strength: float = 1.0
) -> np.ndarray:
    """Place the plate in a scene, warp it, crop it like a detector's box, spoil it.

    ``strength`` scales how often and how much it is spoiled (1: the full mix; lower values
    give the easier samples a curriculum starts with).
    """
    ph, pw = plate.shape[:2]
    margin_x, margin_y = pw // 4, ph // 3
    canvas = _scene(rng, ph + 2 * margin_y, pw + 2 * margin_x)
    canvas[margin_y : margin_y + ph, margin_x : margin_x + pw] = plate
    # Perspective: move each corner of the plate a little; rotation comes with it.
    src = np.float32([[margin_x, margin_y], [margin_x + pw, margin_y],
                      [margin_x + pw, margin_y + ph], [margin_x, margin_y + ph]])  # fmt: skip
    jitter = rng.uniform(0.0, 0.12) * strength
    dst = src + np.float32(
        [[rng.uniform(-1, 1) * jitter * pw, rng.uniform(-1, 1) * jitter * ph] for _ in range(4)]
    )
    angle = np.deg2rad(rng.gauss(0, 4 * strength))
    centre = dst.mean(axis=0)
    rotation = np.float32([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = (dst - centre) @ rotation.T + centre
    matrix = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    warped = cv2.warpPerspective(
        canvas, matrix, (canvas.shape[1], canvas.shape[0]), borderMode=cv2.BORDER_REFLECT
    )
    # The crop box: the warped plate's bounding box, each side moved by up to ±12 % (a
    # detector's box is loose or tight, and the recognizer pads it).
    x1, y1 = dst.min(axis=0)
    x2, y2 = dst.max(axis=0)
    bw, bh = x2 - x1, y2 - y1
    # Inward at most 2 % sideways: main characters may run to 4 % of the plate's edge, and a
    # crop that cuts one off would teach the model to read characters it cannot see.
    x1 += rng.uniform(-0.10, 0.02) * bw
    x2 += rng.uniform(-0.02, 0.10) * bw
    y1 += rng.uniform(-0.15, 0.10) * bh
    y2 += rng.uniform(-0.10, 0.15) * bh
    x1, y1 = max(0, int(x1)), max(0, int(y1))
    x2, y2 = min(warped.shape[1], int(x2)), min(warped.shape[0], int(y2))
    crop = warped[y1:y2, x1:x2].astype(np.float32)
    h, w = crop.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.3 * strength:  # glare: a bright blob
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.2, 0.7) * w
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        crop += (blob * rng.uniform(60, 200))[:, :, None]
    if rng.random() < 0.3 * strength:  # shadow: a darker half-plane
        a, b = rng.uniform(-1, 1), rng.uniform(0, w)
        mask = (xx - b - a * yy) > 0
        crop[mask] *= rng.uniform(0.35, 0.8)
    # Brightness/contrast/colour cast, then sometimes night IR (grey, high contrast).
    crop = crop * rng.uniform(0.5, 1.3) + rng.uniform(-50, 40)
    crop *= np.float32([rng.uniform(0.85, 1.15) for _ in range(3)])
    crop = np.clip(crop, 0, 255).astype(np.uint8)
    if rng.random() < 0.15 * strength:  # occlusion: a tow hitch, a bumper, a finger of snow
        ox, oy = (
            rng.randint(0, w - 1),
            rng.choice([rng.randint(0, h - 1), h - rng.randint(1, max(2, h // 4))]),
        )
        ow, oh = rng.randint(w // 20 + 1, w // 6 + 2), rng.randint(h // 10 + 1, h // 3 + 2)
        shade = rng.randint(0, 255)
        crop[oy : oy + oh, ox : ox + ow] = shade
    # Resolution: real plates are often 60-120 px wide in the frame.
    smallest = 60 + (1 - strength) * 100
    small_w = int(rng.choice([rng.uniform(smallest, smallest + 50), rng.uniform(100, 320)]))
    small_h = max(8, int(small_w * h / max(w, 1)))
    crop = cv2.resize(crop, (small_w, small_h), interpolation=cv2.INTER_AREA)
    if rng.random() < (0.5 if small_w > 90 else 0.2) * strength:
        k = rng.choice([3, 5]) if small_w > 150 else 3
        if rng.random() < 0.5:
            crop = cv2.GaussianBlur(crop, (k, k), rng.uniform(0.3, 1.5))
        else:  # motion blur
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2, :] = 1.0 / k
            crop = cv2.filter2D(crop, -1, kernel)
    if rng.random() < 0.6 * strength:
        noise = np.random.default_rng(rng.randint(0, 2**31)).normal(
            0, rng.uniform(2, 10), crop.shape
        )
        crop = np.clip(crop.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.6 * strength:
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(15, 85)])
        if ok:
            crop = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if rng.random() < 0.1 * strength:
        crop = (
            255 - crop
            if rng.random() < 0.2
            else cv2.cvtColor(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        )
    interpolation = cv2.INTER_AREA if crop.shape[1] > out_w else cv2.INTER_LINEAR
    return cv2.resize(crop, (out_w, out_h), interpolation=interpolation)


def make_sample(
    rng: random.Random, out_w: int = 320, out_h: int = 160, strength: float = 1.0
) -> Sample:
    """One degraded synthetic plate crop of ``out_w × out_h`` with its label."""
    text = random_text(rng)
    state = rng.choice(list(STATES))
    plate = render_plate(rng, text, state)
    return Sample(degrade(rng, plate, out_w, out_h, strength), text, state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=160)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    lines = ["file,state,plate"]
    for i in range(args.count):
        sample = make_sample(rng, args.width, args.height)
        name = f"synth{i:05d}.png"
        cv2.imwrite(str(args.out / name), sample.image)
        lines.append(f"{name},{sample.state},{sample.text}")
    (args.out / "labels.csv").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.count} samples to {args.out}")


if __name__ == "__main__":
    main()
