#!/usr/bin/python3
"""Writes the PyTorch reference numbers resgo's parity tests compare against.

Run with Debian's interpreter (python3-torch 1.13, python3-torchvision 0.14):

    /usr/bin/python3 scripts/make_parity_fixtures.py OUTDIR resnet18 [resnet50 ...]

For each architecture it writes into OUTDIR:
  ARCH.pth          seeded torchvision weights, zip format (top folder "weights")
  ARCH_legacy.pth   the same weights in the legacy (non-zip) format
  ARCH_expect.pth   a dict of expected tensors, zip format:
      input                  [2, 3, 224, 224] the images
      labels                 [2] int64 class labels for the loss
      eval.logits            eval-mode logits
      eval.stem, eval.layer1..eval.layer4   eval-mode outputs after the max pool
                             and after each stage
      train.logits           train-mode logits (batch statistics)
      train.loss             [1] cross-entropy loss of train.logits
      train.<bn>.running_mean / running_var / num_batches_tracked
                             every BN's buffers after that one train-mode forward
      grad.<param>           gradients after loss.backward(), for a few parameters
      grad64.<param>         the same gradients computed in float64 (the model and
                             input converted), the exact values against which
                             both float32 implementations are measured
      relu64.<i>             the float64 run's decision at every ReLU, in the
                             order the ReLUs run: 1 where the output is positive,
                             bits packed big-endian (numpy.packbits) over NCHW
      maxpool64.<i>          the float64 run's max-pooling choices: for each
                             output element, the flat H*W index of its maximum
      predict.logits         eval logits of ARCH_photo.png (a 500x375 RGB image the
                             script draws) preprocessed by torchvision's own
                             ResNet18_Weights.IMAGENET1K_V1.transforms() (resize
                             256, center crop 224, normalize) from PIL

The weights are torchvision's initialization with seed 0, then every BN gets
random gamma, beta and running statistics (so that evaluation is not the
identity), the last BN of each block a small gamma, and fc is scaled so that
the eval logits are of size about 1.
"""
import sys

import numpy as np
import torch
import torchvision
from PIL import Image

GRADS = ["conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight",
         "layer1.0.bn1.weight", "layer2.0.downsample.0.weight", "layer4.0.conv2.weight", "fc.weight", "fc.bias"]


def build(arch):
    torch.manual_seed(0)
    m = torchvision.models.__dict__[arch]()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(0.5 + torch.rand(c, generator=g))
                mod.bias.copy_(0.1 * torch.randn(c, generator=g))
                mod.running_mean.copy_(0.1 * torch.randn(c, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(c, generator=g))
                mod.num_batches_tracked.fill_(7)
        # The last BN of each residual branch gets a small gamma, as trained
        # ResNets have (and zero_init_residual starts from): without it the
        # train-mode gradients of a randomly initialized deep network are so
        # ill-conditioned that float32 results (PyTorch's own included)
        # differ from the exact ones by up to 14%.
        for mod in m.modules():
            if isinstance(mod, (torchvision.models.resnet.BasicBlock, torchvision.models.resnet.Bottleneck)):
                last = mod.bn3 if hasattr(mod, "bn3") else mod.bn2
                last.weight.copy_(0.1 + 0.2 * torch.rand(last.num_features, generator=g))
    return m


def record_decisions(m):
    """Hooks m so that its forward pass records, in order, every ReLU's
    decision (output > 0) and every max pooling's argmax; returns the two
    lists it fills.

    Gradients are piecewise smooth: where a pre-activation lies within
    float32 rounding of zero (a deep network at batch 2 has a few dozen such
    among its millions), each float32 implementation decides its side by
    chance, and that one decision moves the gradients by up to 1%. resgo's
    parity test replays these float64 decisions, so that its gradients are
    compared with the float64 ones on the same piece of the function.
    """
    relus, pools = [], []

    def on_relu(mod, inp, out):
        relus.append(out.detach() > 0)

    def on_pool(mod, inp, out):
        _, idx = torch.nn.functional.max_pool2d(inp[0].detach(), mod.kernel_size, mod.stride, mod.padding,
                                                mod.dilation, ceil_mode=mod.ceil_mode, return_indices=True)
        pools.append(idx)

    for mod in m.modules():
        if isinstance(mod, torch.nn.ReLU):
            mod.register_forward_hook(on_relu)
        elif isinstance(mod, torch.nn.MaxPool2d):
            mod.register_forward_hook(on_pool)
    return relus, pools


def main():
    out, archs = sys.argv[1], sys.argv[2:]
    torch.set_num_threads(2)
    for arch in archs:
        m = build(arch)
        x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
        labels = torch.tensor([3, 997])
        exp = {"input": x, "labels": labels}

        m.eval()
        with torch.no_grad():
            logits = m(x)
            s = logits.std().item()
            m.fc.weight.div_(s)
            m.fc.bias.div_(s)
            h = m.maxpool(m.relu(m.bn1(m.conv1(x))))
            exp["eval.stem"] = h.clone()
            for i in range(1, 5):
                h = getattr(m, "layer%d" % i)(h)
                exp["eval.layer%d" % i] = h.clone()
            exp["eval.logits"] = m(x)
        sd = {k: v.clone() for k, v in m.state_dict().items()}
        torch.save(sd, "%s/%s.pth" % (out, arch))  # zip: top folder is the file's stem
        torch.save(sd, "%s/%s_legacy.pth" % (out, arch), _use_new_zipfile_serialization=False)

        m.train()
        logits = m(x)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        loss.backward()
        exp["train.logits"] = logits.detach()
        exp["train.loss"] = loss.detach().reshape(1)
        for name, mod in m.named_modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                exp["train.%s.running_mean" % name] = mod.running_mean.clone()
                exp["train.%s.running_var" % name] = mod.running_var.clone()
                exp["train.%s.num_batches_tracked" % name] = mod.num_batches_tracked.clone()
        params = dict(m.named_parameters())
        for p in GRADS:
            exp["grad." + p] = params[p].grad.clone()

        m64 = build(arch)
        m64.load_state_dict(sd)
        m64.double().train()
        relus, pools = record_decisions(m64)
        loss64 = torch.nn.functional.cross_entropy(m64(x.double()), labels)
        loss64.backward()
        params = dict(m64.named_parameters())
        for p in GRADS:
            exp["grad64." + p] = params[p].grad.float()
        for i, mask in enumerate(relus):
            exp["relu64.%d" % i] = torch.from_numpy(np.packbits(mask.numpy().ravel()))
        for i, idx in enumerate(pools):
            exp["maxpool64.%d" % i] = idx
        # An image through torchvision's own preprocessing of the V1 weights.
        yy, xx = np.mgrid[0:375, 0:500]
        noise = np.random.default_rng(0).integers(0, 60, size=(375, 500, 3))
        rgb = np.stack([xx * 255 // 500, yy * 255 // 375, (xx + yy) % 256], axis=2) // 2 + noise
        photo = "%s/%s_photo.png" % (out, arch)
        Image.fromarray(rgb.astype(np.uint8)).save(photo)
        pre = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.transforms()
        mp = build(arch)
        mp.load_state_dict(sd)  # the saved weights: m's statistics moved in training mode
        mp.eval()
        with torch.no_grad():
            exp["predict.logits"] = mp(pre(Image.open(photo).convert("RGB")).unsqueeze(0))[0].clone()
        torch.save(exp, "%s/%s_expect.pth" % (out, arch))
        print("%s: eval logits %s, loss %.4f" % (arch, list(exp["eval.logits"].shape), loss.item()))


if __name__ == "__main__":
    main()
