"""The oak table: tree age against trunk diameter, a small regression set (the course's first regression).

Not measured data: a plausible table drawn from a documented growth relation, so it ships with dlx and
is reproducible from a seed. Trunk diameter at breast height D (cm) follows the allometric power law
D = a * age**b with b = 0.8 (growth slows as the tree ages) and a = 1.28, so that a 100-year-old oak is
51 cm across: the International Society of Arboriculture's rule of thumb for white oak (age = growth
factor 5 x diameter in inches). Each tree lies off the curve by a lognormal factor: `noise` is its
standard deviation in log space (0.15: about +-15%).
"""
from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from dlx.data.base import REGRESSION, ArrayData, Column
from dlx.registry import datasets

A_CM, B = 1.28, 0.8  # D = A_CM * age**B


@datasets.register("oak", "oak trees: age in years from trunk diameter in cm (a generated table from the allometric "
                          "law D = 1.28 age^0.8 with lognormal noise; regression)")
def oak(*, n: Annotated[int, Field(ge=8, le=1_000_000)] = 60, noise: Annotated[float, Field(ge=0.0, le=1.0)] = 0.15,
        min_age: Annotated[float, Field(gt=0.0)] = 10.0, max_age: Annotated[float, Field(gt=0.0)] = 250.0,
        seed: Annotated[int, Field(ge=0, lt=2**63)] = 0) -> ArrayData:
    generator = torch.Generator().manual_seed(seed)
    age = min_age + (max_age - min_age) * torch.rand(n, generator=generator)
    diameter = A_CM * age**B * torch.exp(noise * torch.randn(n, generator=generator))
    return ArrayData(diameter.unsqueeze(1), age.unsqueeze(1), REGRESSION,  # x: (N, 1) cm, y: (N, 1) years
                     columns=(Column("diameter_cm"),), target="age_years")
