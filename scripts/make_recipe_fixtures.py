#!/usr/bin/python3
"""Writes the PyTorch reference numbers of resgo's training-recipe tests.

Run with Debian's interpreter (python3-torch 1.13):

    /usr/bin/python3 scripts/make_recipe_fixtures.py [OUT.json]

It prints JSON to stdout, or writes it to OUT.json when given:

  torch   the torch version
  metrics logits [60, 7] and labels; top1 and top5 counts as timm's
          accuracy(output, target, topk=(1, 5)) computes them (torch.topk),
          and per-class precision, recall and F1 of the argmax predictions
          (0 where undefined, scikit-learn's zero_division=0), written out
          with torch ops
  weighted logits [9, 4], labels, class weights; for each label smoothing,
          torch.nn.functional.cross_entropy(weight=, label_smoothing=) and
          its gradient by autograd
  ema     timm's ModelEmaV2 update, ema = decay*ema + (1-decay)*model, as
          its _update computes it on float32 tensors and on an int64
          num_batches_tracked (copy_ truncates): for each case, decay, the
          initial ema and model values, the model values of each further
          step, and the ema after each update (steps[k])

timm is not installed; ModelEmaV2._update is, for every state_dict entry:
    ema_v.copy_(self.decay * ema_v + (1. - self.decay) * model_v)
and that expression is written here as it is.
"""
import json
import sys

import torch


def flat(t):
    return t.detach().reshape(-1).tolist()


def counter_cases():
    out = []
    for decay in (0.9998, 0.99, 0.5):
        ema = torch.tensor(7, dtype=torch.long)
        vals = []
        for m in (8, 9, 100, 1000, 5000):
            ema.copy_(decay * ema + (1. - decay) * torch.tensor(m, dtype=torch.long))
            vals.append(int(ema))
        out.append({"decay": decay, "start": 7, "models": [8, 9, 100, 1000, 5000], "steps": vals})
    return out


def metrics(gen):
    logits = torch.randn(60, 7, generator=gen)
    labels = torch.randint(0, 7, (60,), generator=gen)
    labels[:8] = 6  # class 6 frequent; class 0 may be rare
    _, pred = logits.topk(5, 1, True, True)
    pred = pred.t()
    correct = pred.eq(labels.reshape(1, -1).expand_as(pred))
    top1 = int(correct[:1].reshape(-1).float().sum())
    top5 = int(correct[:5].reshape(-1).float().sum())
    am = logits.argmax(1)
    prec, rec, f1 = [], [], []
    for c in range(7):
        tp = float(((am == c) & (labels == c)).sum())
        npred = float((am == c).sum())
        ntrue = float((labels == c).sum())
        p = tp / npred if npred else 0.0
        r = tp / ntrue if ntrue else 0.0
        prec.append(p)
        rec.append(r)
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
    return {"logits": flat(logits), "labels": labels.tolist(), "classes": 7, "top1": top1, "top5": top5,
            "precision": prec, "recall": rec, "f1": f1}


def weighted(gen):
    logits = torch.randn(9, 4, generator=gen) * 2
    labels = torch.tensor([0, 1, 1, 2, 3, 3, 3, 0, 2])
    w = torch.tensor([0.5, 2.0, 1.25, 0.0])
    cases = []
    for eps in (0.0, 0.1, 0.3):
        x = logits.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(x, labels, weight=w, label_smoothing=eps)
        loss.backward()
        cases.append({"smoothing": eps, "loss": float(loss), "grad": flat(x.grad)})
    return {"logits": flat(logits), "labels": labels.tolist(), "weights": w.tolist(), "cases": cases}


def main():
    gen = torch.Generator().manual_seed(4321)
    cases = []
    for decay in (0.9998, 0.99, 0.5):
        ema0 = torch.randn(64, generator=gen)
        ema = ema0.clone()
        models = [torch.randn(64, generator=gen) * (1 + k) for k in range(4)]
        steps = []
        for m in models:
            ema.copy_(decay * ema + (1. - decay) * m)
            steps.append(flat(ema))
        cases.append({"decay": decay, "ema0": flat(ema0), "models": [flat(m) for m in models], "steps": steps})
    out = {"torch": torch.__version__, "ema": cases, "ema_counter": counter_cases(), "metrics": metrics(gen),
           "weighted": weighted(gen)}
    text = json.dumps(out)
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
