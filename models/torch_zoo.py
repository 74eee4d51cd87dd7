"""Small PyTorch networks with deterministic weights (seeded; independent of global RNG state)."""

from __future__ import annotations

import torch
from torch import nn


def seeded(module: nn.Module, seed: int = 0) -> nn.Module:
    """Re-draw every parameter and BatchNorm statistic from a private generator (He-scaled
    weights; BatchNorm scales near 1, so that deep nets keep their activations' size)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            std = (2.0 / fan_in) ** 0.5 if p.dim() > 1 else 0.1
            p.copy_(torch.randn(p.shape, generator=g) * std)
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                if m.weight is not None:
                    m.weight.add_(1.0)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return module.eval()



def shortcut(cin: int, cout: int, stride: int) -> nn.Module | None:
    """A residual block's projection (1x1 conv + BatchNorm) where its shape changes, else None."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class VGGSmall(nn.Module):
    """VGG-style: conv-relu blocks, max pools, Flatten, then a Linear classifier."""

    def __init__(self, num_classes: int = 10, width: int = 16):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(4 * w * 4 * 4, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = shortcut(cin, cout, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(y + identity)


class ResNetSmall(nn.Module):
    """ResNet-style: stem conv/BN/ReLU/max-pool, three residual stages, global pool, Linear."""

    def __init__(self, num_classes: int = 10, width: int = 16):
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = BasicBlock(w, w)
        self.layer2 = BasicBlock(w, 2 * w, 2)
        self.layer3 = BasicBlock(2 * w, 4 * w, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class MLP(nn.Module):
    """A multilayer perceptron with the activations torch.onnx.export commonly emits."""

    def __init__(self, features: int = 32, hidden: int = 64, classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.act1 = nn.GELU()
        self.fc2 = nn.Linear(hidden, hidden)
        self.act2 = nn.LeakyReLU(0.1)
        self.norm = nn.LayerNorm(hidden)
        self.fc3 = nn.Linear(hidden, classes)

    def forward(self, x):
        x = self.act2(self.fc2(self.act1(self.fc1(x))))
        return torch.softmax(self.fc3(self.norm(x)), dim=-1)


def vgg_small(seed: int = 0) -> nn.Module:
    """VGG-style net on 3x32x32 inputs."""
    return seeded(VGGSmall(), seed)


def resnet_small(seed: int = 0) -> nn.Module:
    """ResNet-style net on 3x64x64 inputs."""
    return seeded(ResNetSmall(), seed)


def mlp(seed: int = 0) -> nn.Module:
    """MLP on (N, 32) inputs."""
    return seeded(MLP(), seed)


# name -> (builder, example input shape)
ZOO = {
    "vgg_small": (vgg_small, (1, 3, 32, 32)),
    "resnet_small": (resnet_small, (1, 3, 64, 64)),
    "mlp": (mlp, (4, 32)),
}


class VGG19Style(nn.Module):
    """VGG19's layout with Keras' layer names (block1_conv1 ... block5_pool), narrow for tests."""

    def __init__(self, width: int = 8, classes: int = 10):
        super().__init__()
        cin = 3
        for b, (n, mult) in enumerate([(2, 1), (2, 2), (4, 4), (4, 8), (4, 8)], 1):
            for i in range(1, n + 1):
                self.add_module(f"block{b}_conv{i}", nn.Conv2d(cin, width * mult, 3, padding=1))
                self.add_module(f"block{b}_relu{i}", nn.ReLU())
                cin = width * mult
            self.add_module(f"block{b}_pool", nn.MaxPool2d(2))
        self.flatten = nn.Flatten()
        self.predictions = nn.Linear(cin * 2 * 2, classes)

    def forward(self, x):
        for name, module in self.named_children():
            if name in ("flatten", "predictions"):
                break
            x = module(x)
        return self.predictions(self.flatten(x))


def vgg19_style(seed: int = 0) -> nn.Module:
    """VGG19-style net on 3x64x64 inputs with Keras' block names."""
    return seeded(VGG19Style(), seed)


ZOO["vgg19_style"] = (vgg19_style, (1, 3, 64, 64))
