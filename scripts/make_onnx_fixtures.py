#!/usr/bin/python3
"""Writes the PyTorch logits that resgo's ONNX test compares ONNX Runtime's
against, for models exported by resgo from the same weights.

Run with Debian's interpreter (python3-torch 1.13, python3-torchvision 0.14):

    /usr/bin/python3 scripts/make_onnx_fixtures.py OUTDIR resnet18 [resnet50 ...]

For each architecture it writes into OUTDIR:
  ARCH.pth          the weights of make_parity_fixtures.build(ARCH): torchvision's
                    initialization with seed 0, random BN gamma, beta and running
                    statistics (zip format)
  ARCH_expect.pth   {"input": [3, 3, 64, 64] images, "logits": eval-mode logits}
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_parity_fixtures import build  # noqa: E402


def main():
    out, archs = sys.argv[1], sys.argv[2:]
    torch.set_num_threads(2)
    for arch in archs:
        m = build(arch).eval()
        x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(3))
        with torch.no_grad():
            logits = m(x)
        torch.save({k: v.clone() for k, v in m.state_dict().items()}, "%s/%s.pth" % (out, arch))
        torch.save({"input": x, "logits": logits}, "%s/%s_expect.pth" % (out, arch))


if __name__ == "__main__":
    main()
