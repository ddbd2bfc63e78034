"""GradCAM on a conv layer with feature maps F^1..F^k (COURSE.md):
alpha^l = mean over positions of d xi_i / d F^l, map M = ReLU(sum_l alpha^l F^l), at the layer's resolution."""
from __future__ import annotations

from torch import Tensor, nn

from dlx.errors import DlxError
from dlx.explain import layers
from dlx.explain.base import Explanation, explainer


@explainer("gradcam", "ReLU of the layer's feature maps weighted by their mean gradient (last conv by default)",
           requires=layers.needs_conv)
def gradcam(model: nn.Module, x: Tensor, target: int, *,
            layer: str | None = None) -> Explanation:  # a module path (--list-layers); None: the last conv layer
    from captum.attr import LayerGradCam  # captum when a method runs, not when the methods are listed

    if layer is None:
        layer, module = layers.conv_layer(model, -1)
    else:
        module = layers.find(model, layer, x)
    # captum hooks the layer for one forward and one backward pass and removes its hooks itself
    weighted = LayerGradCam(model, module).attribute(x, target=target, relu_attributions=False).detach()
    if weighted.dim() != 4:
        raise DlxError(f"--layer '{layer}': its output has shape {tuple(weighted.shape)}, not a feature map "
                       f"(B, C, H, W); choose a conv layer (`dlx explain RUN --list-layers`)")
    if not weighted.any():
        raise DlxError(f"--layer '{layer}': the class logit's gradient with respect to this layer is zero "
                       f"everywhere, so GradCAM has nothing to weigh; choose another layer")
    # the ReLU keeps the features that raise the class score; where none does, the map is blank and says why
    note = None if (weighted > 0).any() else (
        f"the weighted sum of the feature maps is negative everywhere (largest {float(weighted.max()):.3g}): nothing "
        f"at '{layer}' raises the class score, so the map is zero; gradcam_weighted_sum.npy holds the sum; try another layer")
    return Explanation(weighted[0, 0].relu(), "map", {"layer": layer, "map_size": list(weighted.shape[2:])},
                       extras={"weighted_sum": weighted[0, 0]}, note=note)
