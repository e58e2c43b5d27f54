"""Draw one PNG per plot type of ``m.plot`` into docs/images/ (run from anywhere:
``python docs/make_images.py``; needs the plot extra, ``pip install mixedmodels[plot]``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import mixedmodels as mm

IMAGES = Path(__file__).parent / "images"
DPI = 80


def save(drawn: Axes | Figure, name: str) -> None:
    figure = drawn if isinstance(drawn, Figure) else drawn.figure
    figure.savefig(IMAGES / f"{name}.png", dpi=DPI)
    plt.close(figure)
    print(f"{name}.png: {(IMAGES / f'{name}.png').stat().st_size / 1024:.0f} KB")


def main() -> None:
    IMAGES.mkdir(exist_ok=True)
    sleepstudy = mm.datasets.load("sleepstudy")
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)
    save(m.plot.residuals(by="Subject"), "residuals")
    save(m.plot.qq(), "qq")
    save(m.plot.qq_ranef(), "qq_ranef")
    save(m.plot.ranef(), "ranef")
    save(m.plot.shrinkage(), "shrinkage")
    save(m.plot.influence("cooks_distance", groups="Subject"), "influence")
    save(m.plot.profile(), "profile")
    g = mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", mm.datasets.load("cbpp"), family="binomial")
    save(g.plot.residuals(), "residuals_glmm")


if __name__ == "__main__":
    main()
