#!/usr/bin/python3
"""Writes the torch/torchvision reference numbers of resgo's augmentation
and batch-mixing tests.

Run with Debian's interpreter (python3-torch 1.13, python3-torchvision 0.14):

    /usr/bin/python3 scripts/make_augment_fixtures.py [--only mix] [OUT.json]

It prints JSON to stdout, or writes it to OUT.json when given (--only mix:
the versions and the mix section only, what the train package needs):

  torch, torchvision   the versions
  erase        torchvision.transforms.functional.erase(x, i, j, h, w, v=0) of
               a random 3x28x30 tensor x for several rectangles: x, and for
               each case the rectangle and the result
  erase_stats  statistics of RandomErasing.get_params (scale (0.02, 0.33),
               ratio (0.3, 3.3), value 0) over N draws for each image size:
               the fraction of draws with no rectangle, the mean and
               standard deviation of the height, the width and the area
  ops          torchvision's _apply_op (TrivialAugmentWide's and RandAugment's
               operations, nearest interpolation, no fill) on random uint8
               images, RGB [3, 19, 23] and grayscale [1, 17, 16], and a
               flat RGB one: for each op and magnitude, the result
  bins         the magnitude bins of TrivialAugmentWide()._augmentation_space
               (31) and of RandAugment()._augmentation_space(31, (19, 23)):
               per op, the values and whether signed
  mix          timm's Mixup in batch mode, written out below as timm 0.6
               defines it (timm is not installed), for given draws: a batch
               x [6, 2, 5, 7], labels, logits; for each case lam (mixup) or
               the box centre (cutmix), the mixed x, the corrected lam, the
               soft targets (smoothing 0.1, 4 classes), and the
               SoftTargetCrossEntropy loss and its gradient by autograd
"""
import json
import math
import sys

import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as F


def flat(t):
    return t.detach().reshape(-1).tolist()


def erase_cases(gen):
    x = torch.randn(3, 28, 30, generator=gen)
    cases = []
    for (i, j, h, w) in [(0, 0, 5, 7), (3, 4, 10, 2), (20, 25, 8, 5), (0, 0, 27, 29), (13, 0, 1, 30)]:
        cases.append({"rect": [i, j, h, w], "out": flat(F.erase(x.clone(), i, j, h, w, torch.tensor(0.)))})
    return {"shape": [3, 28, 30], "x": flat(x), "cases": cases}


def erase_stats():
    torch.manual_seed(0)
    re = T.RandomErasing(p=1.0)
    out = []
    n = 8000
    for (h, w) in [(28, 28), (32, 48)]:
        img = torch.zeros(1, h, w)
        hs, ws, areas, none = [], [], [], 0
        for _ in range(n):
            i, j, eh, ew, v = re.get_params(img, scale=re.scale, ratio=re.ratio, value=[0])
            if eh == h and ew == w:
                none += 1
                continue
            hs.append(eh)
            ws.append(ew)
            areas.append(eh * ew / (h * w))

        def ms(v):
            m = sum(v) / len(v)
            return m, math.sqrt(sum((a - m) ** 2 for a in v) / (len(v) - 1))
        out.append({"h": h, "w": w, "n": n, "none": none / n,
                    "height": ms(hs), "width": ms(ws), "area": ms(areas)})
    return out


# timm 0.6 timm/data/mixup.py, as documented (the functions resgo follows).
def one_hot(x, num_classes, on_value=1., off_value=0.):
    x = x.long().view(-1, 1)
    return torch.full((x.size()[0], num_classes), off_value).scatter_(1, x, on_value)


def mixup_target(target, num_classes, lam=1., smoothing=0.0):
    off_value = smoothing / num_classes
    on_value = 1. - smoothing + off_value
    y1 = one_hot(target, num_classes, on_value=on_value, off_value=off_value)
    y2 = one_hot(target.flip(0), num_classes, on_value=on_value, off_value=off_value)
    return y1 * lam + y2 * (1. - lam)


def rand_bbox_at(img_shape, lam, cy, cx):
    # rand_bbox with the centre given instead of drawn by np.random.randint
    ratio = math.sqrt(1 - lam)
    img_h, img_w = img_shape[-2:]
    cut_h, cut_w = int(img_h * ratio), int(img_w * ratio)
    yl = min(max(cy - cut_h // 2, 0), img_h)
    yh = min(max(cy + cut_h // 2, 0), img_h)
    xl = min(max(cx - cut_w // 2, 0), img_w)
    xh = min(max(cx + cut_w // 2, 0), img_w)
    return yl, yh, xl, xh


def mix_cases(gen):
    x0 = torch.randn(6, 2, 5, 7, generator=gen)
    labels = torch.tensor([0, 3, 1, 1, 2, 0])
    logits0 = torch.randn(6, 4, generator=gen) * 2
    cases = []
    for kind, lam, cy, cx in [("none", 1.0, 0, 0), ("mixup", 0.7312, 0, 0), ("mixup", 0.05, 0, 0),
                              ("cutmix", 0.6, 2, 3), ("cutmix", 0.3, 0, 6), ("cutmix", 0.9, 4, 0)]:
        x = x0.clone()
        if kind == "cutmix":
            yl, yh, xl, xh = rand_bbox_at(x.shape, lam, cy, cx)
            lam = 1. - (yh - yl) * (xh - xl) / float(x.shape[-2] * x.shape[-1])
            x[:, :, yl:yh, xl:xh] = x.flip(0)[:, :, yl:yh, xl:xh]
        elif lam != 1.:
            x_flipped = x.flip(0).mul_(1. - lam)
            x.mul_(lam).add_(x_flipped)
        target = mixup_target(labels, 4, lam, 0.1)
        logits = logits0.clone().requires_grad_(True)
        loss = torch.sum(-target * torch.nn.functional.log_softmax(logits, dim=-1), dim=-1).mean()
        loss.backward()
        cases.append({"kind": kind, "cy": cy, "cx": cx, "lam": lam, "x": flat(x), "target": flat(target),
                      "loss": float(loss), "grad": flat(logits.grad)})
    return {"shape": [6, 2, 5, 7], "x": flat(x0), "labels": labels.tolist(), "logits": flat(logits0),
            "smoothing": 0.1, "classes": 4, "cases": cases}


def op_cases(gen):
    from torchvision.transforms.autoaugment import _apply_op
    from torchvision.transforms import InterpolationMode
    images = [torch.randint(0, 256, (3, 19, 23), generator=gen, dtype=torch.uint8),
              torch.randint(0, 256, (1, 17, 16), generator=gen, dtype=torch.uint8),
              (torch.randint(0, 40, (3, 19, 23), generator=gen, dtype=torch.uint8) + 100)]
    ops = [("Identity", [0.0]), ("ShearX", [0.3, -0.57, 0.99]), ("ShearY", [0.2, -0.99]),
           ("TranslateX", [5.0, -7.9, 14.3]), ("TranslateY", [3.0, -10.0]),
           ("Rotate", [30.0, -13.5, 90.0, 135.0, -4.5]),
           ("Brightness", [0.5, -0.33, 0.99, -0.99]), ("Color", [0.9, -0.6]), ("Contrast", [0.7, -0.45, -0.99]),
           ("Sharpness", [0.9, -0.8]), ("Posterize", [1.0, 4.0, 7.0, 8.0]), ("Solarize", [0.0, 127.5, 246.5, 255.0]),
           ("AutoContrast", [0.0]), ("Equalize", [0.0])]
    out = []
    for img in images:
        cases = []
        for name, mags in ops:
            for m in mags:
                r = _apply_op(img.clone(), name, m, interpolation=InterpolationMode.NEAREST, fill=None)
                cases.append({"op": name, "magnitude": m, "out": r.reshape(-1).tolist()})
        out.append({"shape": list(img.shape), "pix": img.reshape(-1).tolist(), "cases": cases})
    return out


def bins():
    ta = T.TrivialAugmentWide()._augmentation_space(31)
    ra = T.RandAugment()._augmentation_space(31, (19, 23))
    def conv(space):
        return {k: {"values": [float(x) for x in (v[0].reshape(-1).tolist())], "signed": bool(v[1])}
                for k, v in space.items()}
    return {"trivialaugment": conv(ta), "randaugment": conv(ra), "order": list(ta.keys())}


def main():
    args = sys.argv[1:]
    only_mix = args[:2] == ["--only", "mix"]
    if only_mix:
        args = args[2:]
    gen = torch.Generator().manual_seed(2024)
    out = {"torch": torch.__version__, "torchvision": torchvision.__version__}
    if only_mix:
        erase_cases(gen)  # the same draws before the mix section
        out["mix"] = mix_cases(gen)
    else:
        out.update({"erase": erase_cases(gen), "erase_stats": erase_stats(), "mix": mix_cases(gen),
                    "ops": op_cases(gen), "bins": bins()})
    text = json.dumps(out)
    if args:
        with open(args[0], "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
