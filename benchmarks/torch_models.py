"""The PyTorch networks tinycnn is measured and checked against, written out (torchvision is
not a dependency): the seed's LeNet-5 and ``torchvision.models.resnet50``."""

from __future__ import annotations


def lenet5():
    """The seed's LeNet-5 with Keras' initialisation (Glorot uniform weights, zero biases);
    logits out (the softmax is in the loss)."""
    from torch import nn

    m = nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(), nn.Dropout(0.2),
        nn.Linear(84, 10),
    )  # fmt: skip
    for mod in m:
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(mod.weight)  # Keras' glorot_uniform
            nn.init.zeros_(mod.bias)
    return m


def resnet50(num_classes: int = 1000):
    """``torchvision.models.resnet50`` (v1.5: the stride on the 3x3), as an ``nn.Sequential``."""
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, inplanes, planes, stride, downsample):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU()
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            return self.relu(self.bn3(self.conv3(out)) + identity)

    layers, inplanes = [], 64
    for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        stride = 1 if i == 0 else 2
        down = nn.Sequential(
            nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)
        )
        stage = [Bottleneck(inplanes, planes, stride, down)]
        stage += [Bottleneck(planes * 4, planes, 1, None) for _ in range(blocks - 1)]
        layers.append(nn.Sequential(*stage))
        inplanes = planes * 4
    return nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.MaxPool2d(3, 2, 1), *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(2048, num_classes),
    )  # fmt: skip
