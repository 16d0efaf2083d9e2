"""Generators for validation test files: slicer-like layers and a big file for the speed figure."""

from __future__ import annotations

import math
from pathlib import Path


def layers(cx: float, cy: float, size: float, count: int, *, relative_e: bool = True) -> list[str]:
    """Square perimeters and a little infill per layer, with retractions and travel, like a slicer."""
    out: list[str] = []
    e_abs = 0.0
    half = size / 2

    def extrude(de: float) -> str:
        nonlocal e_abs
        e_abs += de
        return f"E{de:.5f}" if relative_e else f"E{e_abs:.5f}"

    for layer in range(count):
        z = 0.2 + layer * 0.2
        out += [";LAYER_CHANGE", f";Z:{z:.1f}", ";HEIGHT:0.2"]
        out.append(f"G1 {extrude(-0.8)} F2100")
        out.append(f"G1 Z{z + 0.6:.3f} F10800")
        out.append(f"G1 X{cx - half:.3f} Y{cy - half:.3f}")
        out.append(f"G1 Z{z:.3f}")
        out.append(f"G1 {extrude(0.8)} F2100")
        out.append("G1 F1500")
        corners = [
            (cx + half, cy - half),
            (cx + half, cy + half),
            (cx - half, cy + half),
            (cx - half, cy - half),
        ]
        for x, y in corners:
            out.append(f"G1 X{x:.3f} Y{y:.3f} {extrude(size * 0.03326)}")
        for i in range(6):  # a few infill lines
            y = cy - half + (i + 1) * size / 7
            x0, x1 = (cx - half + 0.4, cx + half - 0.4) if i % 2 == 0 else (cx + half - 0.4, cx - half + 0.4)
            out.append(f"G1 X{x0:.3f} Y{y:.3f} F10800")
            out.append(f"G1 X{x1:.3f} Y{y:.3f} {extrude(abs(x1 - x0) * 0.03326)} F2400")
    return out


def big_file(path: Path, target_bytes: int) -> int:
    """A PrusaSlicer-like file of about `target_bytes` (short `G1 X Y E` segments on circles)."""
    head = "M83\nM104 S215\nM140 S60\nG28 W\nG90\nM83\nG1 Z0.2 F720\nG1 Y-3 F1000\nG1 X60 E9 F1000\n"
    lines = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(head)
        written = len(head)
        layer = 0
        while written < target_bytes:
            layer += 1
            chunk = [f";LAYER_CHANGE\n;Z:{0.2 * layer:.1f}\nG1 Z{0.2 * layer:.3f} F720\n"]
            for k in range(360):
                a = math.radians(k)
                chunk.append(f"G1 X{125 + 40 * math.cos(a):.3f} Y{105 + 40 * math.sin(a):.3f} E.02327\n")
            block = "".join(chunk)
            fh.write(block)
            written += len(block)
            lines += len(chunk) + 2
            if layer * 0.2 > 200:
                layer = 0
        fh.write("M104 S0\nM140 S0\nM107\nM84\n")
    return lines
