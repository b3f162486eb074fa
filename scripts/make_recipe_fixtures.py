#!/usr/bin/python3
"""Writes the PyTorch reference numbers of resgo's training-recipe tests.

Run with Debian's interpreter (python3-torch 1.13):

    /usr/bin/python3 scripts/make_recipe_fixtures.py [OUT.json]

It prints JSON to stdout, or writes it to OUT.json when given:

  torch   the torch version
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
    out = {"torch": torch.__version__, "ema": cases, "ema_counter": counter_cases()}
    text = json.dumps(out)
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
