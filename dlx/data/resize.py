"""`data.resize: S`: every image of a dataset scaled to S x S pixels (bilinear; shrinking averages, antialiased), e.g.
the 8x8 digits upscaled to LeNet-1's 16x16 input. Applied once when the data is read, to every split alike."""
from __future__ import annotations

import dataclasses

import torch.nn.functional as F
from torch import Tensor

from dlx.data.base import ArrayData
from dlx.errors import DlxError


def _scaled(x: Tensor, side: int) -> Tensor:
    return F.interpolate(x.float(), size=(side, side), mode="bilinear", align_corners=False, antialias=True)


def resized(data: ArrayData, side: int, name: str) -> ArrayData:
    if data.x.dim() != 4:
        raise DlxError(f"data.resize: dataset '{name}' holds no images (its samples have shape "
                       f"{tuple(data.x.shape[1:])}); remove data.resize")
    test = None if data.test is None else (_scaled(data.test[0], side), data.test[1])
    return dataclasses.replace(data, x=_scaled(data.x, side), test=test)
