"""Plain CNNs trained from scratch on FER-2013 (48×48 grayscale, 7 classes).

* ``fer_cnn`` — report 001 (CMPSC-448 project, Keras): four 3×3 conv layers widening from 64 to 512
  filters, each with ReLU, batch-norm, 2×2 max-pool and dropout 0.3, then dense 512 → 256 → 64 (each with
  dropout) and a 7-way output. Pixels scaled to [0, 1]. Reported test accuracy 62.89% after the first
  training phase, 64.72% after hard-sample retraining with augmentation (stratified 64/16/20 split).
* ``fer_cnn_v21`` — report 004 (UC Irvine project), "CNN V2.1": four conv layers (32, 64, 128, 256
  filters), each followed by ReLU then batch-norm, 2×2 max-pooling, dropout 0.5, a flatten and fully
  connected layers ending in 7 outputs. The report shows loss curves only (no accuracy table for the CNN).

Neither report gives a parameter count. UNVERIFIED choices (kwargs where it matters):
* widths of report 001: 64, 128, 256, 512 ("from 64 to 512 filters"); 'same' padding, so 48 → 3 after
  four pools and the first dense layer sees 512·3·3 inputs; dropout 0.3 after the dense layers too.
* report 004: 3×3 kernels, 'same' padding, a pool after every conv layer ("intermittently"), dropout after
  the conv stack and before the output, one hidden dense layer of 256 units (``hidden``).
* input normalisation: [0, 1] scaling only (mean 0, std 1).

The ResNet-18 of report 002 is timm's ``resnet18`` with its default linear head: use ``timm/resnet18``.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn

from ._registry import no_pretrained_weights, register_model

_CFG = dict(input_size=(1, 48, 48), mean=(0.0,), std=(1.0,), modalities=("rgb",),
            license="Apache-2.0 (ferbench implementation; no published weights)")


class FERCNN(nn.Module):
    """``features`` (conv stages) + ``classifier`` (flatten, dense layers with dropout, output layer).

    Each stage is conv 3×3 ('same') → ReLU → batch-norm → 2×2 max-pool → dropout; each hidden dense layer is
    linear → ReLU → dropout.
    """

    def __init__(self, num_classes: int, in_chans: int, widths: Sequence[int], dense: Sequence[int],
                 drop_conv: float, drop_dense: float, input_size: int = 48):
        super().__init__()
        stages: list[nn.Module] = []
        cin, size = in_chans, input_size
        for width in widths:
            stages += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(width),
                       nn.MaxPool2d(2), nn.Dropout(drop_conv)]
            cin, size = width, size // 2
        self.features = nn.Sequential(*stages)
        layers: list[nn.Module] = [nn.Flatten()]
        fan_in = cin * size * size
        for units in dense:
            layers += [nn.Linear(fan_in, units), nn.ReLU(inplace=True), nn.Dropout(drop_dense)]
            fan_in = units
        layers.append(nn.Linear(fan_in, num_classes))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x):
        return self.classifier(self.features(x))


@register_model(default_cfg=dict(_CFG, paper="report 001: FER-2013 CNN, 4 conv (64→512) + dense 512/256/64"))
def fer_cnn(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """Report 001's CNN (conv 64-128-256-512, dense 512-256-64, dropout 0.3)."""
    if pretrained:
        raise no_pretrained_weights("fer_cnn")
    kw = {"widths": (64, 128, 256, 512), "dense": (512, 256, 64), "drop_conv": 0.3, "drop_dense": 0.3, **kw}
    return FERCNN(num_classes, in_chans, **kw)


@register_model(default_cfg=dict(_CFG, paper="report 004: CNN V2.1, 4 conv (32→256) + BN + dropout 0.5"))
def fer_cnn_v21(num_classes: int, in_chans: int, pretrained: bool = False, hidden: int = 256, **kw) -> nn.Module:
    """Report 004's CNN V2.1 (conv 32-64-128-256, one hidden dense layer, dropout 0.5)."""
    if pretrained:
        raise no_pretrained_weights("fer_cnn_v21")
    kw = {"widths": (32, 64, 128, 256), "dense": (hidden,), "drop_conv": 0.5, "drop_dense": 0.5, **kw}
    return FERCNN(num_classes, in_chans, **kw)
