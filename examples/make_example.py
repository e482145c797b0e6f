"""Draw examples/robot.png: a toy robot in separate, clearly shaded parts, on a transparent ground.

Each part is a flat shape given an inflated, rounded look: the distance to its outline becomes a
height, whose slope lights it from the upper left. Drawn at twice the size, then area-averaged
down for smooth edges.

    python examples/make_example.py [output.png]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

SIZE = 512
SCALE = 2  # drawn at SCALE x SIZE, then averaged down
LIGHT = np.array([-0.45, -0.6, 0.66])  # from the upper left, towards the viewer
VIEWER = np.array([0.0, 0.0, 1.0])
OUTLINE = np.array([38, 42, 58], dtype=np.float64)

Shape = Callable[[ImageDraw.ImageDraw], None]


@dataclass(frozen=True)
class Part:
    draw: Shape
    colour: tuple[int, int, int]
    roundness: float = 18.0  # pixels over which the edge rounds off, at the final size


def box(x0: float, y0: float, x1: float, y1: float, radius: float = 0) -> Shape:
    coords = [v * SCALE for v in (x0, y0, x1, y1)]
    return lambda draw: draw.rounded_rectangle(coords, radius * SCALE, fill=255)


def disc(cx: float, cy: float, r: float) -> Shape:
    coords = [(cx - r) * SCALE, (cy - r) * SCALE, (cx + r) * SCALE, (cy + r) * SCALE]
    return lambda draw: draw.ellipse(coords, fill=255)


def robot() -> list[Part]:
    """Back to front."""
    steel, dark, teal, orange, cream = (
        (150, 160, 178),
        (84, 92, 112),
        (64, 176, 186),
        (242, 140, 56),
        (236, 232, 214),
    )
    return [
        Part(box(251, 40, 261, 100, 4), dark, 5),  # antenna stalk
        Part(disc(256, 40, 15), orange, 12),  # antenna ball
        Part(box(156, 92, 356, 222, 34), teal),  # head
        Part(box(140, 130, 160, 184, 8), dark, 8),  # ears
        Part(box(352, 130, 372, 184, 8), dark, 8),
        Part(box(184, 120, 328, 194, 22), cream, 10),  # face plate
        Part(disc(221, 156, 20), (40, 48, 70), 8),  # eyes
        Part(disc(291, 156, 20), (40, 48, 70), 8),
        Part(disc(227, 150, 8), (120, 230, 255), 6),
        Part(disc(297, 150, 8), (120, 230, 255), 6),
        Part(box(226, 222, 286, 244, 6), dark, 8),  # neck
        Part(box(98, 262, 138, 392, 20), steel),  # arms
        Part(box(374, 262, 414, 392, 20), steel),
        Part(box(126, 282, 150, 306, 6), dark, 8),  # shoulders
        Part(box(362, 282, 386, 306, 6), dark, 8),
        Part(disc(118, 404, 26), orange, 14),  # hands
        Part(disc(394, 404, 26), orange, 14),
        Part(box(140, 238, 372, 398, 30), teal, 24),  # body
        Part(box(186, 268, 326, 356, 14), cream, 10),  # chest panel
        Part(disc(218, 312, 14), (236, 84, 84), 8),  # buttons
        Part(disc(256, 312, 14), (250, 200, 70), 8),
        Part(disc(294, 312, 14), (110, 200, 110), 8),
        Part(box(176, 398, 336, 420, 8), dark, 8),  # axle housing
        Part(disc(184, 436, 46), (52, 56, 70), 16),  # wheels
        Part(disc(328, 436, 46), (52, 56, 70), 16),
        Part(disc(184, 436, 20), steel, 10),  # hubs
        Part(disc(328, 436, 20), steel, 10),
    ]


def shape_mask(part: Part) -> np.ndarray:
    layer = Image.new("L", (SIZE * SCALE, SIZE * SCALE), 0)
    part.draw(ImageDraw.Draw(layer))
    return np.asarray(layer) > 127


def shaded_colour(mask: np.ndarray, part: Part) -> np.ndarray:
    """RGB of the part lit as a rounded, slightly glossy plastic shape."""
    depth = ndimage.distance_transform_edt(mask) / (part.roundness * SCALE)
    t = np.clip(depth, 0.0, 1.0)
    height = np.sqrt(t * (2.0 - t)) * part.roundness * SCALE  # a quarter-circle profile
    slope_y, slope_x = np.gradient(ndimage.gaussian_filter(height, SCALE))
    normal = np.stack([-slope_x, -slope_y, np.ones_like(height)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    light = LIGHT / np.linalg.norm(LIGHT)
    diffuse = np.clip(normal @ light, 0.0, 1.0)
    halfway = light + VIEWER
    halfway /= np.linalg.norm(halfway)
    specular = np.clip(normal @ halfway, 0.0, 1.0) ** 40
    base = np.array(part.colour, dtype=np.float64)
    rgb = base * (0.35 + 0.75 * diffuse)[..., None] + 255.0 * 0.45 * specular[..., None]
    return np.clip(rgb, 0.0, 255.0)


def paint(parts: list[Part]) -> Image.Image:
    side = SIZE * SCALE
    rgb = np.zeros((side, side, 3))
    alpha = np.zeros((side, side), dtype=bool)
    for part in parts:
        mask = shape_mask(part)
        outline = ndimage.binary_dilation(mask, iterations=2 * SCALE) & ~mask
        rgb[outline] = OUTLINE
        rgb[mask] = shaded_colour(mask, part)[mask]
        alpha |= mask | outline
    layers = np.dstack([rgb, np.where(alpha, 255.0, 0.0)]).round().astype(np.uint8)
    return Image.fromarray(layers).resize((SIZE, SIZE), Image.Resampling.BOX)


def main() -> None:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("robot.png")
    paint(robot()).save(output, optimize=True)
    print(f"wrote {output} ({output.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
