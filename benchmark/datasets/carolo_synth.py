"""Procedural ``carolo-synth`` dataset: 30 Carolo-Cup style traffic-sign / road-marking classes.

Every image is rendered deterministically from ``(seed, session, class_id, index)`` with numpy
and Pillow only (no font files, no downloads).  Road markings are painted white on asphalt in a
bird's-eye view and perspective-warped as seen from a low car camera; signs are drawn as flat
artwork, projected with a random pose and composited over cluttered backgrounds.  Everything is
drawn at twice the output resolution and box-downsampled.

Images are grouped into *recording sessions*.  Each session draws its own camera / lighting /
palette parameters (see :func:`session_params`) from one shared distribution, so holding out
whole sessions gives a realistic domain shift for the verification split.

Determinism: the RNG of one image is
``np.random.default_rng(np.random.SeedSequence([seed, session, class_id, index]))`` and the
session parameters come from ``SeedSequence([seed, session, 0x5E55, 0xC0DE])``; no global RNG
state is used, so an image does not depend on how many other images are rendered.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from benchmark.datasets.entry import DatasetEntry, LoadRequest, option

__all__ = [
    "CLASS_NAMES",
    "CLASS_KINDS",
    "N_CLASSES",
    "RENDERER_VERSION",
    "SynthSpec",
    "session_params",
    "render_image",
    "render_arrays",
    "render_to_npy",
    "label_arrays",
    "SynthOptions",
    "DATASET",
]

#: Bump whenever the rendered pixels change (used as a cache key elsewhere).
RENDERER_VERSION: int = 2

CLASS_NAMES: Tuple[str, ...] = (
    "CROSSWALK", "STOPLINE", "GIVE_WAY_LINE", "R_ARROW", "L_ARROW", "FORBIDDEN",
    "SPEEDLIMIT10", "SPEEDLIMIT20", "SPEEDLIMIT30", "SPEEDLIMIT40", "SPEEDLIMIT50",
    "SPEEDLIMIT60", "SPEEDLIMIT70", "SPEEDLIMIT80", "SPEEDLIMIT90", "NSPEEDLIMIT",
    "STARTLINE_PARKING", "CROSSINGLINE", "PEDESTRIAN", "EXPRESS_START", "EXPRESS_END",
    "NO_PASSING_START", "NO_PASSING_END", "UPHILL", "DOWNHILL", "PEDESTRIAN_ISLAND",
    "SHARP_TURN_RIGHT", "SHARP_TURN_LEFT", "RIGHT_OF_WAY", "NO_CLASS",
)
N_CLASSES: int = len(CLASS_NAMES)

_MARKINGS = frozenset({0, 1, 2, 3, 4, 16, 17})
_NO_CLASS = 29
#: ``"marking"``, ``"sign"`` or ``"background"`` for every class id.
CLASS_KINDS: Tuple[str, ...] = tuple(
    "marking" if c in _MARKINGS else ("background" if c == _NO_CLASS else "sign")
    for c in range(N_CLASSES)
)

_SESSION_KEY = (0x5E55, 0xC0DE)  # never a valid (class_id, index) of an image stream


@dataclass(frozen=True)
class SynthSpec:
    """Size and seed of a rendered ``carolo-synth`` dataset.

    Attributes
    ----------
    seed : int
        Master seed; every image and session derives its RNG from it.
    n_sessions : int
        Number of recording sessions (session ids ``0 .. n_sessions - 1``).
    per_class_per_session : int
        Images of each class rendered in each session.
    image_size : int
        Output images are ``image_size x image_size x 3`` uint8 RGB.
    """

    seed: int = 0
    n_sessions: int = 12
    per_class_per_session: int = 16
    image_size: int = 80


# --------------------------------------------------------------------------------------------
# session parameters
# --------------------------------------------------------------------------------------------

def _r(x: float) -> float:
    return round(float(x), 4)


def _rgb(a: np.ndarray) -> List[float]:
    return [_r(v) for v in np.clip(a, 0.0, 1.0)]


def session_params(seed: int, session: int) -> dict:
    """Camera, lighting and palette parameters of one recording session.

    All sessions draw from the same distribution (a held-out session is a new draw, not an
    extrapolation).  Colours are linear-ish RGB in ``[0, 1]``.

    Parameters
    ----------
    seed : int
        Dataset seed (``SynthSpec.seed``).
    session : int
        Session id.

    Returns
    -------
    dict
        JSON-serializable mapping of parameter name to float / list of floats / str.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, session, *_SESSION_KEY]))
    look, camera = _session_camera(rng)
    return {"look": look, **camera, **_session_palette(rng)}


def _look(light: float, temp: float, saturation: float) -> str:
    """Name of a session's overall look, from its unrounded light, temperature, saturation."""
    if light < 0.8 and temp > 0.2:
        return "dusk"
    if saturation < 0.82:
        return "overcast"
    if temp > 0.35:
        return "warm"
    if temp < -0.35:
        return "cool"
    return "neutral"


def _session_camera(rng: np.random.Generator) -> Tuple[str, dict]:
    """The look and the lighting / optics parameters: the first draws of a session's RNG."""
    temp = rng.uniform(-1.0, 1.0)            # colour temperature: -1 cool .. +1 warm
    light = rng.uniform(0.7, 1.15)
    tint = rng.uniform(-0.04, 0.04)
    gain = np.array([1.0 + 0.13 * temp, 1.0 + tint, 1.0 - 0.15 * temp])
    saturation = rng.uniform(0.7, 1.1)
    gamma = rng.uniform(0.85, 1.2)
    contrast = rng.uniform(0.8, 1.1)
    black = rng.uniform(0.0, 0.06)
    noise = rng.uniform(1.5, 6.0)
    blur = rng.uniform(0.0, 0.4)
    motion_p = rng.uniform(0.0, 0.25)
    vignette = rng.uniform(0.0, 0.35)
    return _look(light, temp, saturation), {
        "light_level": _r(light),
        "color_temp": _r(temp),
        "rgb_gain": [_r(v) for v in gain],
        "saturation": _r(saturation),
        "gamma": _r(gamma),
        "contrast": _r(contrast),
        "black_level": _r(black),
        "noise_sigma": _r(noise),
        "blur_sigma": _r(blur),
        "motion_blur_prob": _r(motion_p),
        "vignette": _r(vignette),
    }


def _session_palette(rng: np.random.Generator) -> dict:
    """Surface colours and sign appearance / camera geometry: the later draws of a session."""
    grey = rng.uniform(0.22, 0.48)
    asphalt = grey + rng.uniform(-0.03, 0.03, 3)
    asphalt_tex = rng.uniform(0.03, 0.1)
    paint = rng.uniform(0.72, 0.95) + rng.uniform(-0.03, 0.03, 3)
    paint_wear = rng.uniform(0.0, 0.4)
    veg = [np.array([rng.uniform(0.08, 0.3), rng.uniform(0.25, 0.5), rng.uniform(0.05, 0.2)])
           for _ in range(3)]
    bld = [np.full(3, rng.uniform(0.3, 0.8)) + rng.uniform(-0.1, 0.1, 3) for _ in range(3)]
    sky = np.array([0.55, 0.7, 0.9]) * rng.uniform(0.7, 1.1) + rng.uniform(-0.1, 0.1, 3)
    ground = np.array([0.35, 0.35, 0.3]) * rng.uniform(0.6, 1.3) + rng.uniform(-0.06, 0.06, 3)
    sign_fade = rng.uniform(0.72, 1.0)
    sign_scale = rng.uniform(0.68, 0.8)
    cam_ratio = rng.uniform(1.5, 2.1)
    return {
        "asphalt_rgb": _rgb(asphalt),
        "asphalt_texture": _r(asphalt_tex),
        "paint_rgb": _rgb(paint),
        "paint_wear": _r(paint_wear),
        "vegetation_rgb": [_rgb(v) for v in veg],
        "building_rgb": [_rgb(b) for b in bld],
        "sky_rgb": _rgb(sky),
        "ground_rgb": _rgb(ground),
        "sign_fade": _r(sign_fade),
        "sign_scale": _r(sign_scale),
        "cam_ratio": _r(cam_ratio),
    }


# --------------------------------------------------------------------------------------------
# geometry helpers
# --------------------------------------------------------------------------------------------

Pt = Tuple[float, float]


def _persp_coeffs(dst: Sequence[Pt], src: Sequence[Pt]) -> Tuple[float, ...]:
    """PIL ``PERSPECTIVE`` coefficients mapping output points ``dst`` to input points ``src``."""
    a = np.zeros((8, 8))
    b = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(dst, src)):
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y]
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y]
        b[2 * i] = u
        b[2 * i + 1] = v
    return tuple(float(c) for c in np.linalg.solve(a, b))


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float,
         n: int = 14) -> List[Pt]:
    """Points on an elliptic arc (degrees, y axis pointing down, 0 = +x, 90 = +y)."""
    t = np.radians(np.linspace(a0, a1, n))
    return list(zip((cx + rx * np.cos(t)).tolist(), (cy + ry * np.sin(t)).tolist()))


def _rot(pts: Sequence[Pt], ang: float, cx: float, cy: float) -> List[Pt]:
    c, s = math.cos(ang), math.sin(ang)
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in pts]


# Stroke font: each digit is a list of polylines in a unit box (x right, y down).
def _mk_digits() -> Dict[str, List[List[Pt]]]:
    d6_stem = [(0.82, 0.03), (0.5, 0.1), (0.22, 0.3), (0.06, 0.58), (0.04, 0.7)]
    d6_loop = _arc(0.5, 0.69, 0.46, 0.31, 180, 540, 20)
    return {
        "0": [_arc(0.5, 0.5, 0.46, 0.5, 0, 360, 24)],
        "1": [[(0.18, 0.25), (0.62, 0.0), (0.62, 1.0)]],
        "2": [_arc(0.5, 0.28, 0.44, 0.28, 195, 375, 12) + [(0.02, 1.0), (0.98, 1.0)]],
        "3": [[(0.06, 0.0), (0.9, 0.0), (0.42, 0.4)]
              + _arc(0.48, 0.7, 0.48, 0.3, 250, 515, 14)],
        "4": [[(0.72, 1.0), (0.72, 0.0), (0.0, 0.7), (1.0, 0.7)]],
        "5": [[(0.9, 0.0), (0.14, 0.0), (0.08, 0.46)]
              + _arc(0.48, 0.67, 0.46, 0.33, 235, 510, 16)],
        "6": [d6_stem, d6_loop],
        "7": [[(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)]],
        "8": [_arc(0.5, 0.25, 0.38, 0.25, 0, 360, 18), _arc(0.5, 0.73, 0.47, 0.27, 0, 360, 18)],
        "9": [[(1.0 - x, 1.0 - y) for x, y in d6_stem], [(1.0 - x, 1.0 - y) for x, y in d6_loop]],
    }


_DIGITS: Optional[Dict[str, List[List[Pt]]]] = None


def _draw_text(d: ImageDraw.ImageDraw, text: str, cx: float, cy: float, h: float,
               fill: tuple) -> None:
    """Draw ``text`` (digits only) centred at ``(cx, cy)`` with glyph height ``h`` pixels."""
    global _DIGITS
    if _DIGITS is None:
        _DIGITS = _mk_digits()
    w, gap = 0.56 * h, 0.16 * h
    lw = max(1, int(round(0.16 * h)))
    x0 = cx - (len(text) * w + (len(text) - 1) * gap) / 2.0
    y0 = cy - h / 2.0
    rr = lw / 2.0
    for i, ch in enumerate(text):
        for line in _DIGITS[ch]:
            pts = [(x0 + i * (w + gap) + x * w, y0 + y * h) for x, y in line]
            d.line(pts, fill=fill, width=lw, joint="curve")
            for px, py in (pts[0], pts[-1]):
                d.ellipse([px - rr, py - rr, px + rr, py + rr], fill=fill)


# --------------------------------------------------------------------------------------------
# sign artwork (flat, on a transparent square canvas of q x q pixels)
# --------------------------------------------------------------------------------------------

_RED = (0.78, 0.06, 0.1)
_BLUE = (0.06, 0.26, 0.66)
_WHITE = (0.95, 0.95, 0.95)
_BLACK = (0.07, 0.07, 0.07)
_YELLOW = (0.96, 0.74, 0.06)
_GREY = (0.5, 0.5, 0.5)


def _car_rear(d, x, y, s, fill):
    """Car seen from behind, centred at (x, y), width s."""
    d.rounded_rectangle([x - 0.5 * s, y - 0.05 * s, x + 0.5 * s, y + 0.42 * s],
                        radius=max(1, int(0.08 * s)), fill=fill)
    d.polygon([(x - 0.36 * s, y), (x - 0.26 * s, y - 0.38 * s), (x + 0.26 * s, y - 0.38 * s),
               (x + 0.36 * s, y)], fill=fill)
    d.rectangle([x - 0.46 * s, y + 0.38 * s, x - 0.26 * s, y + 0.58 * s], fill=fill)
    d.rectangle([x + 0.26 * s, y + 0.38 * s, x + 0.46 * s, y + 0.58 * s], fill=fill)


def _car_side(d, x, y, s, fill, wheel):
    """Car in side view, centred at (x, y), length s."""
    d.rounded_rectangle([x - 0.5 * s, y - 0.1 * s, x + 0.5 * s, y + 0.16 * s],
                        radius=max(1, int(0.06 * s)), fill=fill)
    d.polygon([(x - 0.3 * s, y - 0.08 * s), (x - 0.18 * s, y - 0.32 * s),
               (x + 0.2 * s, y - 0.32 * s), (x + 0.34 * s, y - 0.08 * s)], fill=fill)
    for wx in (-0.28, 0.28):
        r = 0.11 * s
        d.ellipse([x + wx * s - r, y + 0.16 * s - r, x + wx * s + r, y + 0.16 * s + r],
                  fill=wheel)


def _stripes(d, q, r, fill, lw, n=5, spacing=0.085):
    """Parallel '/' stripes clipped to a disc of radius r (canvas units) centred on q/2."""
    c = q / 2.0
    ux, uy = math.cos(math.radians(-45)), math.sin(math.radians(-45))   # along '/'
    nx, ny = -uy, ux
    for k in range(n):
        off = (k - (n - 1) / 2.0) * spacing * q
        if abs(off) >= r:
            continue
        half = math.sqrt(r * r - off * off)
        d.line([(c + nx * off - ux * half, c + ny * off - uy * half),
                (c + nx * off + ux * half, c + ny * off + uy * half)], fill=fill, width=lw)


def _disc(d, q, f, inset=0.0):
    """A filled disc on the ``q x q`` sign canvas, ``inset * q`` inside the 2 % margin."""
    m = 0.02 * q
    d.ellipse([m + inset * q, m + inset * q, q - m - inset * q, q - m - inset * q], fill=f)


def _sign_red_ring(d, cls, q, col, rng):
    """Speed limits 10..90 and no passing (21): red ring, black content."""
    red, white, black = col(_RED), col(_WHITE), col(_BLACK)
    c = q / 2.0
    _disc(d, q, red)
    _disc(d, q, white, 0.11)
    if cls == 21:
        _car_rear(d, 0.33 * q, 0.5 * q, 0.27 * q, black)
        _car_rear(d, 0.67 * q, 0.5 * q, 0.27 * q, red)
    else:
        _draw_text(d, str((cls - 5) * 10), c, c, 0.46 * q, black)


def _sign_end(d, cls, q, col, rng):
    """End signs (15, 22): white disc, grey content, stripes; 15 draws its number from rng."""
    white, grey = col(_WHITE), col(_GREY)
    c = q / 2.0
    _disc(d, q, grey)
    _disc(d, q, white, 0.025)
    dark = col((0.22, 0.22, 0.22))
    if cls == 15:
        _draw_text(d, str(int(rng.integers(1, 10)) * 10), c, c, 0.44 * q, dark)
    else:
        _car_rear(d, 0.33 * q, 0.5 * q, 0.27 * q, dark)
        _car_rear(d, 0.67 * q, 0.5 * q, 0.27 * q, dark)
    _stripes(d, q, 0.455 * q, col((0.6, 0.6, 0.6)), max(1, int(0.025 * q)), n=5,
             spacing=0.07)


def _sign_no_entry(d, cls, q, col, rng):
    white, red = col(_WHITE), col(_RED)
    _disc(d, q, white)
    _disc(d, q, red, 0.02)
    d.rectangle([0.19 * q, 0.41 * q, 0.81 * q, 0.59 * q], fill=white)


def _sign_keep_right(d, cls, q, col, rng):
    """Pedestrian island (25): blue disc with a white down-right arrow."""
    white, blue = col(_WHITE), col(_BLUE)
    _disc(d, q, white)
    _disc(d, q, blue, 0.025)
    lw = int(0.11 * q)
    d.line([(0.27 * q, 0.27 * q), (0.6 * q, 0.6 * q)], fill=white, width=lw)
    tip = (0.74 * q, 0.74 * q)
    d.polygon([tip, (0.44 * q, 0.68 * q), (0.68 * q, 0.44 * q)], fill=white)


def _pedestrian(d, q, white, black):
    """The crosswalk pictogram of class 18 on its blue square."""
    d.polygon([(0.5 * q, 0.12 * q), (0.9 * q, 0.85 * q), (0.1 * q, 0.85 * q)],
              fill=white)
    lw = max(1, int(0.045 * q))
    d.ellipse([0.47 * q, 0.33 * q, 0.57 * q, 0.43 * q], fill=black)
    d.line([(0.51 * q, 0.45 * q), (0.47 * q, 0.63 * q)], fill=black, width=lw)
    d.line([(0.37 * q, 0.79 * q), (0.47 * q, 0.63 * q), (0.6 * q, 0.79 * q)],
           fill=black, width=lw)
    d.line([(0.38 * q, 0.6 * q), (0.5 * q, 0.5 * q), (0.61 * q, 0.58 * q)],
           fill=black, width=lw)
    for k in range(4):
        x0 = (0.3 + 0.11 * k) * q
        d.rectangle([x0, 0.8 * q, x0 + 0.06 * q, 0.83 * q], fill=black)


def _sign_blue_square(d, cls, q, col, rng):
    """Pedestrian crossing (18), express way start (19) and end (20)."""
    red, blue, white, black = col(_RED), col(_BLUE), col(_WHITE), col(_BLACK)
    m = 0.02 * q
    d.rounded_rectangle([m, m, q - m, q - m], radius=int(0.08 * q), fill=white)
    d.rounded_rectangle([m + 0.025 * q, m + 0.025 * q, q - m - 0.025 * q,
                         q - m - 0.025 * q], radius=int(0.06 * q), fill=blue)
    if cls == 18:
        _pedestrian(d, q, white, black)
    else:
        _car_side(d, 0.5 * q, 0.52 * q, 0.68 * q, white, blue)
        if cls == 20:
            d.line([(0.12 * q, 0.12 * q), (0.88 * q, 0.88 * q)], fill=red,
                   width=int(0.1 * q))


def _sign_slope(d, cls, q, col, rng):
    """Warning triangles uphill (23) and downhill (24)."""
    red, white, black = col(_RED), col(_WHITE), col(_BLACK)
    d.polygon([(0.5 * q, 0.06 * q), (0.98 * q, 0.9 * q), (0.02 * q, 0.9 * q)], fill=red)
    d.polygon([(0.5 * q, 0.25 * q), (0.82 * q, 0.81 * q), (0.18 * q, 0.81 * q)], fill=white)
    if cls == 23:
        d.polygon([(0.3 * q, 0.76 * q), (0.7 * q, 0.76 * q), (0.7 * q, 0.52 * q)],
                  fill=black)
    else:
        d.polygon([(0.3 * q, 0.76 * q), (0.7 * q, 0.76 * q), (0.3 * q, 0.52 * q)],
                  fill=black)


def _sign_chevron(d, cls, q, col, rng):
    """Chevron boards: sharp turn right (26) and left (27)."""
    red, white = col(_RED), col(_WHITE)
    m = 0.02 * q
    d.rectangle([m, 0.25 * q, q - m, 0.75 * q], fill=white)
    d.rectangle([m + 0.02 * q, 0.27 * q, q - m - 0.02 * q, 0.73 * q], fill=red)
    for k in range(3):
        x = (0.24 + 0.24 * k) * q
        pts = [(x - 0.08 * q, 0.31 * q), (x + 0.02 * q, 0.31 * q), (x + 0.14 * q, 0.5 * q),
               (x + 0.02 * q, 0.69 * q), (x - 0.08 * q, 0.69 * q), (x + 0.04 * q, 0.5 * q)]
        if cls == 27:
            pts = [(q - px, py) for px, py in pts]
        d.polygon(pts, fill=white)


def _sign_priority(d, cls, q, col, rng):
    """Priority road (28): yellow diamond."""
    white, black, yellow = col(_WHITE), col(_BLACK), col(_YELLOW)
    m = 0.02 * q
    c = q / 2.0
    d.polygon([(c, m), (q - m, c), (c, q - m), (m, c)], fill=black)
    d.polygon([(c, m + 0.02 * q), (q - m - 0.02 * q, c), (c, q - m - 0.02 * q),
               (m + 0.02 * q, c)], fill=white)
    d.polygon([(c, 0.2 * q), (0.8 * q, c), (c, 0.8 * q), (0.2 * q, c)], fill=yellow)


#: Class ids of each sign family and the function drawing its artwork.
_SIGN_FAMILIES = (
    ((*range(6, 15), 21), _sign_red_ring),
    ((15, 22), _sign_end),
    ((5,), _sign_no_entry),
    ((25,), _sign_keep_right),
    ((18, 19, 20), _sign_blue_square),
    ((23, 24), _sign_slope),
    ((26, 27), _sign_chevron),
    ((28,), _sign_priority),
)


def _draw_sign(cls: int, q: int, col, rng: np.random.Generator) -> Image.Image:
    """Flat sign artwork on a transparent ``q x q`` RGBA canvas."""
    im = Image.new("RGBA", (q, q), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    for classes, draw in _SIGN_FAMILIES:
        if cls in classes:
            draw(d, cls, q, col, rng)
            break
    return im


# --------------------------------------------------------------------------------------------
# backgrounds
# --------------------------------------------------------------------------------------------

def _u8(rgb) -> Tuple[int, int, int]:
    return tuple(int(max(0, min(255, round(v * 255)))) for v in rgb)


def _jit(rng, rgb, amt=0.06):
    return [float(v) for v in np.clip(np.asarray(rgb) + rng.uniform(-amt, amt, 3), 0, 1)]


def _clutter(rng: np.random.Generator, sp: dict, r: int, pole_p: float) -> Image.Image:
    """Cluttered roadside scene (sky, buildings, vegetation, poles) of ``r x r`` pixels."""
    im = Image.new("RGB", (r, r), _u8(sp["ground_rgb"]))
    d = ImageDraw.Draw(im)
    hz = rng.uniform(-0.2, 0.75) * r
    sky = np.asarray(sp["sky_rgb"]) * rng.uniform(0.85, 1.1)
    if hz > 0:
        d.rectangle([0, 0, r, hz], fill=_u8(sky))
        d.rectangle([0, 0, r, hz * 0.5], fill=_u8(sky * 0.9))
    ground = _jit(rng, sp["ground_rgb"])
    d.rectangle([0, max(hz, 0), r, r], fill=_u8(ground))
    if rng.random() < 0.5:                   # road surface at the bottom
        ry = rng.uniform(0.7, 1.0) * r
        d.rectangle([0, ry, r, r], fill=_u8(sp["asphalt_rgb"]))
    for _ in range(int(rng.integers(0, 4))):    # buildings
        b = _jit(rng, sp["building_rgb"][int(rng.integers(0, 3))], 0.05)
        x0 = rng.uniform(-0.3, 0.9) * r
        w = rng.uniform(0.2, 0.7) * r
        top = hz - rng.uniform(0.1, 0.8) * r
        bot = hz + rng.uniform(0.0, 0.15) * r
        d.rectangle([x0, top, x0 + w, bot], fill=_u8(b))
        if rng.random() < 0.6:
            win = _u8(np.asarray(b) * rng.uniform(0.3, 0.7))
            ws = rng.uniform(0.05, 0.1) * r
            for wy in np.arange(top + ws * 0.6, bot - ws, ws * 2.0):
                for wx in np.arange(x0 + ws * 0.6, x0 + w - ws, ws * 2.0):
                    d.rectangle([wx, wy, wx + ws, wy + ws], fill=win)
    for _ in range(int(rng.integers(2, 7))):    # vegetation blobs
        v = np.asarray(sp["vegetation_rgb"][int(rng.integers(0, 3))]) * rng.uniform(0.6, 1.3)
        cx, cy = rng.uniform(-0.1, 1.1) * r, rng.uniform(hz / r - 0.3, 1.1) * r
        rx, ry = rng.uniform(0.08, 0.35) * r, rng.uniform(0.08, 0.3) * r
        d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=_u8(np.clip(v, 0, 1)))
    for _ in range(int(rng.integers(0, 3))):    # thin poles / wires
        g = _u8([rng.uniform(0.2, 0.7)] * 3)
        if rng.random() < 0.6:
            x = rng.uniform(0, r)
            d.line([(x, rng.uniform(-0.2, 0.6) * r), (x + rng.uniform(-3, 3), r)], fill=g,
                   width=max(1, int(rng.uniform(0.01, 0.04) * r)))
        else:
            y = rng.uniform(0, 0.6) * r
            d.line([(0, y), (r, y + rng.uniform(-0.2, 0.2) * r)], fill=g, width=1)
    if rng.random() < pole_p:                # a bare sign pole (also in NO_CLASS)
        x = rng.uniform(0.3, 0.7) * r
        d.rectangle([x - 0.025 * r, rng.uniform(0.1, 0.5) * r, x + 0.025 * r, r],
                    fill=_u8([rng.uniform(0.45, 0.7)] * 3))
    return im


# --------------------------------------------------------------------------------------------
# road markings (bird's-eye canvas in lane units; lanes: x in [1, 2] left, [2, 3] right)
# --------------------------------------------------------------------------------------------

_BIRD_W, _BIRD_H = 5.0, 4.0
_FOCUS = {0: (2.3, 2.0), 1: (2.5, 2.0), 2: (2.5, 2.2), 3: (2.5, 2.05), 4: (2.5, 2.05),
          16: (2.9, 2.0), 17: (2.5, 1.8)}


class _Paint:
    """White paint on the bird's-eye mask; coordinates in lane units, ``p`` pixels each."""

    def __init__(self, d: ImageDraw.ImageDraw, p: float):
        self.d, self.p = d, p

    def rect(self, x0, y0, x1, y1):
        p = self.p
        self.d.rectangle([x0 * p, y0 * p, x1 * p, y1 * p], fill=255)

    def poly(self, pts):
        p = self.p
        self.d.polygon([(x * p, y * p) for x, y in pts], fill=255)

    def vline(self, x, y0, y1, dashed=False, phase=0.0):
        if not dashed:
            self.rect(x - 0.025, y0, x + 0.025, y1)
            return
        y = y0 - phase
        while y < y1:
            a, b = max(y, y0), min(y + 0.3, y1)
            if b > a:
                self.rect(x - 0.025, a, x + 0.025, b)
            y += 0.6


def _lanes(pt: _Paint, cls: int, phase: float) -> None:
    """Both lane edges and the dashed centre line, interrupted at crossings (0, 17)."""
    gap = (0.0, 0.0)
    if cls == 17:                            # intersection: lanes interrupted
        gap = (1.3, 2.3)
    elif cls == 0:
        gap = (1.62, 2.38)
    for x, dashed in ((1.0, False), (2.0, True), (3.0, False)):
        if gap[1] > gap[0] and not (cls == 0 and x != 2.0):
            pt.vline(x, 0.0, gap[0], dashed, phase)
            pt.vline(x, gap[1], _BIRD_H, dashed, phase)
        else:
            pt.vline(x, 0.0, _BIRD_H, dashed, phase)


def _mark_zebra(pt: _Paint, cls: int, phase: float) -> None:
    x = 1.08
    while x + 0.12 <= 2.95:
        pt.rect(x, 1.7, x + 0.12, 2.3)
        x += 0.24


def _mark_stop(pt: _Paint, cls: int, phase: float) -> None:
    pt.rect(2.0, 1.94, 3.0, 2.06)


def _mark_give_way(pt: _Paint, cls: int, phase: float) -> None:
    """Give-way line and the hollow triangle behind it."""
    p = pt.p
    x = 2.03
    while x < 2.97:
        pt.rect(x, 1.96, min(x + 0.1, 2.97), 2.04)
        x += 0.17
    pt.poly([(2.28, 2.2), (2.72, 2.2), (2.5, 2.75)])
    pt.d.polygon([(2.38 * p, 2.27 * p), (2.62 * p, 2.27 * p), (2.5 * p, 2.57 * p)], fill=0)


def _mark_turn_arrow(pt: _Paint, cls: int, phase: float) -> None:
    """Right (3) or left (4) turn arrow."""
    p = pt.p
    sgn = 1.0 if cls == 3 else -1.0
    mx = [(2.5 + sgn * (x - 2.5), y) for x, y in _arc(2.82, 2.0, 0.32, 0.32, 180, 270, 10)]
    pt.rect(2.45, 2.0, 2.55, 2.6)
    pt.d.line([(x * p, y * p) for x, y in mx], fill=255, width=int(0.1 * p), joint="curve")
    hx = 2.5 + sgn * 0.32
    pt.poly([(hx, 1.53), (hx, 1.83), (hx + sgn * 0.2, 1.68)])


def _mark_parking(pt: _Paint, cls: int, phase: float) -> None:
    """Parking area start: bar + hatched block."""
    p = pt.p
    lw = max(1, int(round(0.05 * p)))
    pt.rect(3.0, 2.1, 3.65, 2.17)
    pt.rect(3.6, 1.5, 3.65, 2.17)
    k = 0.0
    while k < 0.6:
        pt.d.line([((3.02 + k) * p, 2.1 * p), ((3.02 + k + 0.25) * p, 1.55 * p)], fill=255,
                  width=lw)
        k += 0.14
    pt.rect(3.0, 1.5, 3.65, 1.55)


def _mark_crossing_road(pt: _Paint, cls: int, phase: float) -> None:
    """Crossing road: both edges + its centre line."""
    pt.rect(0.0, 2.27, _BIRD_W, 2.33)
    pt.rect(0.0, 1.27, _BIRD_W, 1.33)
    x = phase - 0.6
    while x < _BIRD_W:
        pt.rect(x, 1.775, x + 0.3, 1.825)
        x += 0.6


#: The marking drawn on top of the lanes, per class id (others: lanes only).
_MARKING_DRAW = {0: _mark_zebra, 1: _mark_stop, 2: _mark_give_way, 3: _mark_turn_arrow,
                 4: _mark_turn_arrow, 16: _mark_parking, 17: _mark_crossing_road}


def _draw_marking(cls: int, rng: np.random.Generator, p: float) -> Image.Image:
    """White paint mask ('L') of a marking class (or plain lanes for NO_CLASS)."""
    im = Image.new("L", (int(_BIRD_W * p), int(_BIRD_H * p)), 0)
    pt = _Paint(ImageDraw.Draw(im), p)
    phase = rng.uniform(0, 0.6)
    _lanes(pt, cls, phase)
    if cls in _MARKING_DRAW:
        _MARKING_DRAW[cls](pt, cls, phase)
    return im


def _road(cls: int, rng: np.random.Generator, sp: dict, r: int) -> np.ndarray:
    """Perspective view of a road marking; returns float RGB (r/2, r/2, 3) in [0, 1]."""
    p = 0.75 * r
    paint = _draw_marking(cls, rng, p)
    if cls == _NO_CLASS:
        fx, fy = rng.uniform(1.6, 2.9), rng.uniform(1.5, 2.5)
    else:
        fx, fy = _FOCUS[cls]
    wn = rng.uniform(1.0, 1.4)
    ratio = sp["cam_ratio"] * rng.uniform(0.85, 1.15)
    wf = wn * ratio
    depth = wn * rng.uniform(0.9, 1.2) * math.sqrt(ratio)
    cx = fx + rng.uniform(-0.13, 0.13)
    cy = fy + rng.uniform(-0.12, 0.12)
    near, far = cy + 0.38 * depth, cy - 0.62 * depth
    quad = [(cx - wf / 2, far), (cx + wf / 2, far), (cx + wn / 2, near), (cx - wn / 2, near)]
    quad = _rot(quad, math.radians(rng.uniform(-12, 12)), cx, cy)
    coeffs = _persp_coeffs([(0, 0), (r, 0), (r, r), (0, r)], [(x * p, y * p) for x, y in quad])
    m = paint.transform((r, r), Image.PERSPECTIVE, coeffs, Image.BILINEAR).reduce(2)
    m = np.asarray(m, dtype=np.float32) * (1.0 / 255.0)
    size = r // 2
    if sp["paint_wear"] > 0:                # worn paint
        m = m * (1.0 - sp["paint_wear"] * rng.uniform(0.3, 1.0)
                 * np.clip(_lowfreq(rng, size, 6) + 0.5, 0, 1))
    asphalt = np.asarray(sp["asphalt_rgb"], np.float32) * rng.uniform(0.85, 1.15)
    tex = 1.0 + sp["asphalt_texture"] * _lowfreq(rng, size, 8) * 2.0
    paint_rgb = np.asarray(sp["paint_rgb"], np.float32) * rng.uniform(0.88, 1.05)
    img = asphalt[None, None, :] * tex[:, :, None]
    img += (paint_rgb[None, None, :] - img) * m[:, :, None]
    return img


def _lowfreq(rng: np.random.Generator, r: int, k: int) -> np.ndarray:
    """Smooth random field of shape (r, r), roughly unit amplitude."""
    g = rng.standard_normal((k, k)).astype(np.float32) * 0.5
    return np.asarray(Image.fromarray(g).resize((r, r), Image.BICUBIC))


# --------------------------------------------------------------------------------------------
# main renderer
# --------------------------------------------------------------------------------------------

def _sign_scene(cls: int, rng: np.random.Generator, sp: dict, r: int) -> np.ndarray:
    bg = _clutter(rng, sp, r, pole_p=0.0)
    fade = sp["sign_fade"] * rng.uniform(0.9, 1.05)
    bright = rng.uniform(0.85, 1.0)

    def col(c):
        c = np.asarray(c)
        c = (c.mean() + (c - c.mean()) * min(fade, 1.0)) * bright
        return _u8(c) + (255,)

    q = int(r * 1.25)
    art = _draw_sign(cls, q, col, rng)
    s = r * float(np.clip(sp["sign_scale"] * rng.uniform(0.88, 1.12), 0.45, 0.95))
    cx = r / 2 + rng.uniform(-0.1, 0.1) * r
    cy = r / 2 + rng.uniform(-0.1, 0.1) * r
    kx = rng.uniform(0.76, 1.0)
    hr = rng.uniform(0.9, 1.1)
    if rng.random() < 0.5:
        hl, hr = hr, 1.0
    else:
        hl = 1.0
    quad = [(cx - kx * s / 2, cy - hl * s / 2), (cx + kx * s / 2, cy - hr * s / 2),
            (cx + kx * s / 2, cy + hr * s / 2), (cx - kx * s / 2, cy + hl * s / 2)]
    quad = _rot(quad, math.radians(rng.uniform(-8, 8)), cx, cy)
    if rng.random() < 0.7:                   # pole below the sign
        d = ImageDraw.Draw(bg)
        d.rectangle([cx - 0.03 * r, cy, cx + 0.03 * r, r],
                    fill=_u8([rng.uniform(0.45, 0.7)] * 3))
    coeffs = _persp_coeffs(quad, [(0, 0), (q, 0), (q, q), (0, q)])
    layer = art.transform((r, r), Image.PERSPECTIVE, coeffs, Image.BILINEAR,
                          fillcolor=(0, 0, 0, 0))
    bg.paste(layer, (0, 0), layer)
    if rng.random() < 0.2:                   # partial occlusion by foliage / object
        d = ImageDraw.Draw(bg)
        a = rng.uniform(0, 2 * math.pi)
        ox, oy = cx + math.cos(a) * s * 0.55, cy + math.sin(a) * s * 0.55
        rad = rng.uniform(0.15, 0.25) * s
        if rng.random() < 0.6:
            v = np.asarray(sp["vegetation_rgb"][int(rng.integers(0, 3))]) * rng.uniform(0.7, 1.2)
        else:
            v = np.full(3, rng.uniform(0.1, 0.7))
        d.ellipse([ox - rad, oy - rad * 1.3, ox + rad, oy + rad * 1.3], fill=_u8(np.clip(v, 0,
                                                                                         1)))
    return np.asarray(bg.reduce(2), dtype=np.float32) * (1.0 / 255.0)


def _motion_kernel(rng: np.random.Generator, length: float) -> ImageFilter.Kernel:
    k = np.zeros((5, 5))
    a = rng.uniform(0, math.pi)
    for t in np.linspace(-length / 2, length / 2, 9):
        x, y = 2 + t * math.cos(a), 2 + t * math.sin(a)
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        fx, fy = x - x0, y - y0
        for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                          (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            if 0 <= x0 + dx < 5 and 0 <= y0 + dy < 5:
                k[y0 + dy, x0 + dx] += w
    return ImageFilter.Kernel((5, 5), k.ravel().tolist(), scale=float(k.sum()))


def render_image(class_id: int, session: int, index: int, spec: SynthSpec) -> np.ndarray:
    """Render one image.

    Parameters
    ----------
    class_id : int
        Class id in ``0 .. 29`` (see :data:`CLASS_NAMES`).
    session : int
        Recording session id (selects lighting / camera / palette parameters).
    index : int
        Index of the image within ``(session, class_id)``.
    spec : SynthSpec
        Only ``seed`` and ``image_size`` are used.

    Returns
    -------
    numpy.ndarray
        ``(image_size, image_size, 3)`` uint8 RGB image.
    """
    if not 0 <= class_id < N_CLASSES:
        raise ValueError(f"class_id must be in [0, {N_CLASSES}), got {class_id}")
    sp = session_params(spec.seed, session)
    return _render(class_id, session, index, spec, sp)


def _render(class_id: int, session: int, index: int, spec: SynthSpec, sp: dict) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, session, class_id, index]))
    size = int(spec.image_size)
    img = _scene(class_id, rng, sp, 2 * size)
    img = _optics(img, rng, sp, size)
    img = _lighting(img, rng, sp, size)
    # sensor noise (signal dependent)
    sig = sp["noise_sigma"] * rng.uniform(0.7, 1.3) / 255.0
    noise = rng.standard_normal((size, size, 3), dtype=np.float32)
    img = img + noise * (sig * (0.5 + np.sqrt(img)))
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _scene(class_id: int, rng: np.random.Generator, sp: dict, r: int) -> np.ndarray:
    """The scene of one image, float RGB (r/2, r/2, 3) in [0, 1], before optics and lighting."""
    kind = CLASS_KINDS[class_id]
    if kind == "background":
        kind = "marking" if rng.random() < 0.5 else "clutter"
    if kind == "marking":
        return _road_scene(class_id, rng, sp, r)
    if kind == "clutter":
        img = np.asarray(_clutter(rng, sp, r, pole_p=0.5).reduce(2), dtype=np.float32)
        img *= 1.0 / 255.0
        return img
    return _sign_scene(class_id, rng, sp, r)


def _road_scene(class_id: int, rng: np.random.Generator, sp: dict, r: int) -> np.ndarray:
    """A road marking with, sometimes, a cast shadow and an occluding object."""
    img = _road(class_id, rng, sp, r)
    if rng.random() < 0.35:              # cast shadow
        sh = Image.new("L", (r, r), 0)
        pts = [(rng.uniform(-0.2, 1.2) * r, rng.uniform(-0.2, 1.2) * r) for _ in range(5)]
        ImageDraw.Draw(sh).polygon(pts, fill=255)
        shm = np.asarray(sh.reduce(2), np.float32) * (rng.uniform(0.2, 0.45) / 255.0)
        img *= (1.0 - shm)[:, :, None]
    if rng.random() < 0.12:              # occluding object on the road
        oc = Image.new("L", (r, r), 0)
        a = rng.uniform(0, 2 * math.pi)
        ox, oy = r / 2 + math.cos(a) * r * 0.55, r / 2 + math.sin(a) * r * 0.55
        rad = rng.uniform(0.15, 0.25) * r
        ImageDraw.Draw(oc).ellipse([ox - rad, oy - rad, ox + rad, oy + rad], fill=255)
        om = np.asarray(oc.reduce(2), np.float32)[:, :, None] * (1.0 / 255.0)
        img += (rng.uniform(0.05, 0.6, 3).astype(np.float32) - img) * om
    return img


def _optics(img: np.ndarray, rng: np.random.Generator, sp: dict, size: int) -> np.ndarray:
    """Defocus / motion blur (at output resolution)."""
    sigma = sp["blur_sigma"] * rng.uniform(0.5, 1.5)
    if rng.random() < 0.1:
        sigma += rng.uniform(0.2, 0.6)
    sigma *= size / 80.0
    motion = rng.random() < sp["motion_blur_prob"]
    mlen = rng.uniform(1.5, 3.0) * size / 80.0
    if sigma > 0.2 or motion:
        pim = Image.fromarray(np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8))
        if motion:
            pim = pim.filter(_motion_kernel(rng, min(mlen, 4.0)))
        if sigma > 0.2:
            pim = pim.filter(ImageFilter.GaussianBlur(sigma))
        img = np.asarray(pim, dtype=np.float32) * (1.0 / 255.0)
    return img


def _lighting(img: np.ndarray, rng: np.random.Generator, sp: dict, size: int) -> np.ndarray:
    """Exposure, colour cast, directional gradient, saturation, contrast, vignette, gamma."""
    gain = np.asarray(sp["rgb_gain"], np.float32) * rng.uniform(0.94, 1.06, 3).astype(np.float32)
    expo = sp["light_level"] * math.exp(rng.uniform(-0.3, 0.3))
    ga = rng.uniform(0, 2 * math.pi)
    gs = rng.uniform(0.0, 0.25)
    lin = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    grad = 1.0 + gs * (math.cos(ga) * lin[None, :] + math.sin(ga) * lin[:, None])
    img = img * (expo * gain)[None, None, :] * grad[:, :, None]
    luma = img @ np.array([0.299, 0.587, 0.114], np.float32)
    img = luma[:, :, None] + (img - luma[:, :, None]) * sp["saturation"]
    img = (img - 0.45) * (sp["contrast"] * rng.uniform(0.9, 1.1)) + 0.45
    img = img * (1.0 - sp["black_level"]) + sp["black_level"]
    if sp["vignette"] > 0:
        r2 = lin[None, :] ** 2 + lin[:, None] ** 2
        img = img * (1.0 - sp["vignette"] * 2.0 * r2)[:, :, None]
    return np.clip(img, 0.0, 1.0) ** (sp["gamma"] * rng.uniform(0.9, 1.1))


def render_arrays(spec: SynthSpec,
                  progress: Optional[Callable[[int, int], None]] = None
                  ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render the whole dataset described by ``spec``.

    Parameters
    ----------
    spec : SynthSpec
        Dataset size and seed.
    progress : callable, optional
        Called as ``progress(done, total)`` after each session and at the end.

    Returns
    -------
    images : numpy.ndarray
        ``(N, S, S, 3)`` uint8 RGB, ``N = n_sessions * 30 * per_class_per_session``.
    labels : numpy.ndarray
        ``(N,)`` int64 class ids.
    sessions : numpy.ndarray
        ``(N,)`` int64 session ids.

    Notes
    -----
    Ordered session-major, then class, then index.  Image ``(session, class, index)`` is
    identical to ``render_image(class, session, index, spec)``.
    """
    n, k, s = int(spec.n_sessions), int(spec.per_class_per_session), int(spec.image_size)
    per_session = N_CLASSES * k
    images = np.empty((n * per_session, s, s, 3), np.uint8)
    for sess in range(n):
        _render_rows(spec, sess * per_session, (sess + 1) * per_session,
                     images[sess * per_session:(sess + 1) * per_session])
        if progress is not None:
            progress((sess + 1) * per_session, n * per_session)
    labels, sessions = label_arrays(spec)
    return images, labels, sessions


def label_arrays(spec: SynthSpec) -> Tuple[np.ndarray, np.ndarray]:
    """``(labels, sessions)`` of :func:`render_arrays`, without rendering (int64, shape (N,))."""
    n, k = int(spec.n_sessions), int(spec.per_class_per_session)
    labels = np.tile(np.repeat(np.arange(N_CLASSES, dtype=np.int64), k), n)
    sessions = np.repeat(np.arange(n, dtype=np.int64), N_CLASSES * k)
    return labels, sessions


def _render_rows(spec: SynthSpec, start: int, stop: int, out: np.ndarray) -> None:
    """Render images ``start .. stop - 1`` of :func:`render_arrays`'s order into ``out``."""
    k = int(spec.per_class_per_session)
    params: Dict[int, dict] = {}
    for i in range(start, stop):
        sess, rest = divmod(i, N_CLASSES * k)
        c, j = divmod(rest, k)
        if sess not in params:
            params[sess] = session_params(spec.seed, sess)
        out[i - start] = _render(c, sess, j, spec, params[sess])


def _render_chunk(path, start: int, stop: int, spec: SynthSpec) -> None:
    """A :func:`benchmark.datasets.parallel.fill` task: rows ``[start, stop)`` into ``path``."""
    from benchmark.datasets.parallel import open_rows

    rows = open_rows(path, start, stop)
    _render_rows(spec, start, stop, rows)
    del rows


#: Images per rendering task (about 0.15 s at 80 px) and the fewest worth a process pool.
RENDER_CHUNK = 64
RENDER_POOL_MIN = 512


def render_to_npy(spec: SynthSpec, path, *, workers: Optional[int] = None,
                  progress: Optional[Callable[[int, int], None]] = None) -> None:
    """Render the images of :func:`render_arrays` into the existing ``.npy`` file ``path``.

    ``path`` holds a uint8 array of shape ``(N, S, S, 3)`` (e.g. from
    :func:`benchmark.datasets.cache.new_scratch`); chunks of
    :data:`RENDER_CHUNK` images are rendered in ``workers`` processes
    (default: every core, see :mod:`benchmark.datasets.parallel`), each
    written straight into the file. The bytes are those of
    :func:`render_arrays` (every image is seeded by its own
    ``(seed, session, class, index)``).
    """
    from benchmark.datasets import parallel

    total = int(spec.n_sessions) * N_CLASSES * int(spec.per_class_per_session)
    jobs = parallel.tasks(total, RENDER_CHUNK, lambda a, b: spec)
    parallel.fill(path, _render_chunk, jobs, workers=workers, min_pool_rows=RENDER_POOL_MIN,
                  progress=progress)


# --------------------------------------------------------------------------------------------
# the registered dataset
# --------------------------------------------------------------------------------------------

def _at_least_one(v: int) -> bool:
    return v >= 1


@dataclass(frozen=True)
class SynthOptions:
    """Options of the ``carolo-synth`` dataset (the size fields of :class:`SynthSpec`)."""

    n_sessions: int = option(SynthSpec.n_sessions, help="number of recording sessions",
                             check=_at_least_one, rule="an integer >= 1")
    per_class_per_session: int = option(SynthSpec.per_class_per_session,
                                        help="images per class per session",
                                        check=_at_least_one, rule="an integer >= 1")


def load_request(req: LoadRequest, options: SynthOptions):
    """The ``carolo-synth`` dataset, rendered once into the cache.

    The cache key is the spec, :data:`RENDERER_VERSION` and the Pillow
    version (a different Pillow may rasterize edges differently). The last
    quarter of the sessions (at least one) is the verification split's
    held-out part.
    """
    import dataclasses
    import sys
    import time

    import PIL

    from benchmark.datasets import cache
    from benchmark.datasets.base import Dataset

    spec = SynthSpec(seed=req.seed, image_size=req.image_size, n_sessions=options.n_sessions,
                     per_class_per_session=options.per_class_per_session)
    description = {"dataset": "carolo-synth", "renderer_version": RENDERER_VERSION,
                   "spec": dataclasses.asdict(spec), "pillow": PIL.__version__}
    key = cache.cache_key(description)

    def render():
        t0 = time.perf_counter()
        if req.verbose:
            print(f"rendering carolo-synth ({spec.n_sessions} sessions x 30 classes x "
                  f"{spec.per_class_per_session} images, {spec.image_size}px) into "
                  f"{req.cache_dir / key}", file=sys.stderr)
        labels, sessions = label_arrays(spec)
        shape = (int(labels.size), spec.image_size, spec.image_size, 3)
        path = cache.new_scratch(req.cache_dir, key, "images", shape, np.uint8)
        try:
            render_to_npy(spec, path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        meta = dict(description, cache_key=key, n_images=int(labels.size),
                    render_seconds=round(time.perf_counter() - t0, 2))
        return {"images": path, "labels": labels, "groups": sessions}, meta

    arrays, meta = cache.load_or_build(req.cache_dir, key, render)
    n_held = max(1, spec.n_sessions // 4)
    held = tuple(range(spec.n_sessions - n_held, spec.n_sessions))
    return Dataset(name="carolo-synth", images=arrays["images"],
                   labels=np.asarray(arrays["labels"], np.int64),
                   groups=np.asarray(arrays["groups"], np.int64),
                   class_names=tuple(CLASS_NAMES), verification_groups=held, meta=meta)


DATASET = DatasetEntry(
    name="carolo-synth", load=load_request, options=SynthOptions,
    summary="procedural Carolo-Cup style signs and road markings, 30 classes (rendered)")
