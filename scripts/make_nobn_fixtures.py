#!/usr/bin/python3
"""Writes the PyTorch reference numbers of resgo's resnet20_nobn: the CIFAR
ResNet-20 of the ResNet paper (section 4.2) without batch normalization, a
bias in every convolution, as a plain PyTorch module with torchvision's
parameter names (conv1, layer1.0.conv1, layer2.0.downsample.0, fc).

Run with Debian's interpreter (python3-torch 1.13):

    /usr/bin/python3 scripts/make_nobn_fixtures.py OUTDIR

It writes into OUTDIR:
  resnet20_nobn.pth          seeded weights (PyTorch's default initialization)
  resnet20_nobn_expect.pth   a dict of expected tensors:
      input                  [2, 1, 28, 28] the images
      labels                 [2] int64 class labels
      logits64               the logits, computed in float64
      loss64                 [1] the cross-entropy, in float64
      grad64.<param>         every parameter's gradient after loss.backward(),
                             computed in float64 (model and input converted)
"""
import sys

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=True)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or inp != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, 0, bias=True))

    def forward(self, x):
        out = self.conv2(self.relu(self.conv1(x)))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet20NoBN(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1, 1, bias=True)
        self.relu = nn.ReLU()
        inp, stages = 16, []
        for i, planes in enumerate([16, 32, 64]):
            blocks = []
            for j in range(3):
                blocks.append(Block(inp, planes, 2 if i > 0 and j == 0 else 1))
                inp = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def main():
    out = sys.argv[1]
    torch.set_num_threads(2)
    torch.manual_seed(0)
    m = ResNet20NoBN()
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    torch.save(sd, "%s/resnet20_nobn.pth" % out)

    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([3, 7])
    m64 = ResNet20NoBN()
    m64.load_state_dict(sd)
    m64.double()
    logits = m64(x.double())
    loss = nn.functional.cross_entropy(logits, labels)
    loss.backward()
    exp = {"input": x, "labels": labels, "logits64": logits.detach().float(), "loss64": loss.detach().float().reshape(1)}
    for name, p in m64.named_parameters():
        exp["grad64." + name] = p.grad.float()
    torch.save(exp, "%s/resnet20_nobn_expect.pth" % out)
    print("resnet20_nobn: loss %.4f, %d gradients" % (loss.item(), len(list(m64.parameters()))))


if __name__ == "__main__":
    main()
