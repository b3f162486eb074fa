#!/usr/bin/python3
"""Writes the PyTorch reference numbers resgo's optim tests compare against.

Run with Debian's interpreter (python3-torch 1.13):

    /usr/bin/python3 scripts/make_optim_fixtures.py [OUT.json]

It prints JSON to stdout, or writes it to OUT.json when given:

  torch        the torch version
  names        parameter names: "a.weight" [4, 5], "b.bias" [7], "c.weight" [3]
  shapes       their shapes
  init         their initial values (flat, row-major)
  grads        grads[step][param]: the gradient of each parameter at each of
               the STEPS steps (flat), or null where the parameter has no
               gradient (b.bias at step 2; c.weight always), which torch skips
  optimizers   for each configuration: name, kind ("sgd", "adam", "adamw"),
               config (lr, momentum, dampening, weight_decay, nesterov, betas,
               eps, amsgrad as torch takes them), params[step][param] (flat
               values after each step), and state: the optimizer's state after
               the last step as {"<param>.<field>": {"shape", "values"}}
  schedules    for each schedule: name, kind, args, and lrs: the learning rate
               at index 0 (after construction) and after each scheduler.step()
               (ReduceLROnPlateau: metrics, the value passed to each step)
  groups       SGD (momentum 0.9, Nesterov, weight decay) over two parameter
               groups: a.weight at lr 0.1, the others at lr * scale; params
               after each step as in optimizers
  wd_groups    for each configuration: name, kind and config as in
               optimizers, decay, and params after each step: the optimizer
               over two parameter groups, a.weight with the configured
               weight_decay, b.bias and c.weight with weight_decay=decay
  clip         for each max_norm: the gradients of each step after
               torch.nn.utils.clip_grad_norm_ (clipped[step][param]) and the
               total norms it returned

All tensors are float32; their values are written exactly (a float32 converts
to a double, which JSON round-trips). The optimizers run their single-tensor
implementation (foreach=False) on the CPU.
"""
import json
import sys
import warnings

import torch

STEPS = 5
NAMES = ["a.weight", "b.bias", "c.weight"]
SHAPES = [[4, 5], [7], [3]]
# Gradient scale per step: changes of size make AMSGrad's maximum differ from
# the current second moment.
SCALES = [1.0, 0.5, 2.0, 0.1, 0.05]

OPTIMIZERS = [
    ("sgd", "sgd", dict(lr=0.1)),
    ("sgd_momentum_wd", "sgd", dict(lr=0.1, momentum=0.9, weight_decay=5e-4)),
    ("sgd_dampening", "sgd", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=1e-3)),
    ("sgd_nesterov", "sgd", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)),
    ("adam", "adam", dict()),
    ("adam_lr", "adam", dict(lr=0.01)),
    ("adam_wd", "adam", dict(lr=0.01, weight_decay=0.01)),
    ("adam_amsgrad", "adam", dict(lr=0.01, amsgrad=True)),
    ("adam_betas", "adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True)),
    ("adamw", "adamw", dict()),
    ("adamw_lr", "adamw", dict(lr=0.01, weight_decay=0.1)),
    ("adamw_amsgrad", "adamw", dict(lr=0.01, amsgrad=True)),
]


def flat(t):
    return t.detach().reshape(-1).tolist()


def make_grads(gen):
    grads = []
    for step in range(STEPS):
        row = []
        for i, shape in enumerate(SHAPES):
            if NAMES[i] == "c.weight" or (NAMES[i] == "b.bias" and step == 2):
                row.append(None)
                continue
            g = torch.randn(shape, generator=gen) * SCALES[step]
            if step == 1:
                g.view(-1)[0] = 0.0  # an exact zero gradient
            row.append(g)
        grads.append(row)
    return grads


def new_optimizer(kind, groups, config):
    """torch's optimizer of kind over groups (parameters or parameter groups)."""
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[kind]
    extra = {} if kind == "sgd" else {"foreach": False}
    return cls(groups, **config, **extra)


def run_steps(opt, params, grads):
    """Steps opt over the gradients of every step; the parameters after each."""
    history = []
    for step in range(STEPS):
        for p, g in zip(params, grads[step]):
            p.grad = None if g is None else g.clone()
        opt.step()
        history.append([flat(p) for p in params])
    return history


def run_optimizer(kind, config, init, grads):
    params = [torch.nn.Parameter(t.clone()) for t in init]
    opt = new_optimizer(kind, params, config)
    history = run_steps(opt, params, grads)
    state = {}
    for name, p in zip(NAMES, params):
        for field, t in opt.state.get(p, {}).items():
            if t is None:
                continue
            state[name + "." + field] = {"shape": list(t.shape), "values": flat(t.float())}
    return history, state


def schedules():
    def record(name, kind, args, make, n):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=0.1)
        sched = make(opt)
        lrs = [opt.param_groups[0]["lr"]]
        for _ in range(n - 1):
            opt.step()
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        return {"name": name, "kind": kind, "args": args, "lrs": lrs}

    def plateau(name, args, metrics):
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=args["base"])
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=args["factor"], patience=int(args["patience"]),
            min_lr=args["min_lr"], cooldown=int(args["cooldown"]))
        lrs = [opt.param_groups[0]["lr"]]
        for m in metrics:
            opt.step()
            sched.step(m)
            lrs.append(opt.param_groups[0]["lr"])
        return {"name": name, "kind": "plateau", "args": args, "lrs": lrs, "metrics": metrics}

    S = torch.optim.lr_scheduler
    return [
        record("multistep", "multistep", {"base": 0.1, "gamma": 0.2, "m0": 3, "m1": 5, "m2": 5},
               lambda o: S.MultiStepLR(o, milestones=[5, 3, 5], gamma=0.2), 10),
        plateau("plateau", {"base": 0.1, "factor": 0.5, "patience": 2, "min_lr": 0.01, "cooldown": 0},
                [1.0, 0.9, 0.9, 0.95, 0.91, 0.8, 0.8, 0.79999, 0.8, 0.9, 0.7, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]),
        plateau("plateau_cooldown", {"base": 0.05, "factor": 0.1, "patience": 0, "min_lr": 0.0, "cooldown": 2},
                [3.0, 3.0, 3.0, 3.0, 2.0, 2.5, 2.5, 1.0, 1.0, 1.0, 1.0]),
        record("step", "step", {"base": 0.1, "step_size": 3, "gamma": 0.1},
               lambda o: S.StepLR(o, step_size=3, gamma=0.1), 12),
        record("cosine", "cosine", {"base": 0.1, "eta_min": 0.001, "t_max": 10},
               lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001), 25),
        record("cosine_zero_min", "cosine", {"base": 0.1, "eta_min": 0.0, "t_max": 7},
               lambda o: S.CosineAnnealingLR(o, T_max=7), 8),
        record("warmup_constant", "warmup_constant", {"base": 0.1, "factor": 0.1, "steps": 4},
               lambda o: S.LinearLR(o, start_factor=0.1, total_iters=4), 8),
        record("warmup_cosine", "warmup_cosine", {"base": 0.1, "factor": 0.01, "steps": 3, "eta_min": 0.0, "t_max": 7},
               lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.01, total_iters=3),
                                            S.CosineAnnealingLR(o, T_max=7)], milestones=[3]), 11),
        record("warmup_step", "warmup_step", {"base": 0.1, "factor": 0.25, "steps": 2, "step_size": 2, "gamma": 0.5},
               lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.25, total_iters=2),
                                            S.StepLR(o, step_size=2, gamma=0.5)], milestones=[2]), 10),
    ]


def run_groups(init, grads, scale):
    params = [torch.nn.Parameter(t.clone()) for t in init]
    opt = torch.optim.SGD([{"params": params[:1]}, {"params": params[1:], "lr": 0.1 * scale}],
                          lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    return {"scale": scale, "params": run_steps(opt, params, grads)}


# Two weight-decay groups: a.weight at the configured weight_decay, the
# others at "decay" (no decay on biases, the usual recipe; and another decay).
WD_GROUPS = [
    ("sgd_nesterov_nowd", "sgd", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4), 0.0),
    ("sgd_other_wd", "sgd", dict(lr=0.05, momentum=0.9, weight_decay=1e-4), 0.05),
    ("adam_nowd", "adam", dict(lr=0.01, weight_decay=0.01), 0.0),
    ("adamw_nowd", "adamw", dict(lr=0.01, weight_decay=0.1), 0.0),
    ("adamw_other_wd", "adamw", dict(lr=0.01, weight_decay=0.01), 0.3),
]


def run_wd_groups(init, grads):
    out = []
    for name, kind, config, decay in WD_GROUPS:
        params = [torch.nn.Parameter(t.clone()) for t in init]
        opt = new_optimizer(kind, [{"params": params[:1]}, {"params": params[1:], "weight_decay": decay}], config)
        history = run_steps(opt, params, grads)
        out.append({"name": name, "kind": kind, "config": config, "decay": decay, "params": history})
    return out


def run_clip(grads, max_norm):
    clipped, norms = [], []
    for row in grads:
        params = []
        for g, shape in zip(row, SHAPES):
            p = torch.nn.Parameter(torch.zeros(shape))
            p.grad = None if g is None else g.clone()
            params.append(p)
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm)))
        clipped.append([None if p.grad is None else flat(p.grad) for p in params])
    return {"max_norm": max_norm, "clipped": clipped, "norms": norms}


def main():
    warnings.simplefilter("ignore")
    gen = torch.Generator().manual_seed(1234)
    init = [torch.randn(shape, generator=gen) for shape in SHAPES]
    grads = make_grads(gen)
    out = {
        "torch": torch.__version__,
        "names": NAMES,
        "shapes": SHAPES,
        "init": [flat(t) for t in init],
        "grads": [[None if g is None else flat(g) for g in row] for row in grads],
        "optimizers": [],
        "schedules": schedules(),
        "groups": run_groups(init, grads, 0.1),
        "wd_groups": run_wd_groups(init, grads),
        "clip": [run_clip(grads, m) for m in (0.5, 2.0, 1000.0)],
    }
    for name, kind, config in OPTIMIZERS:
        history, state = run_optimizer(kind, config, init, grads)
        cfg = dict(config)
        if "betas" in cfg:
            cfg["betas"] = list(cfg["betas"])
        out["optimizers"].append({"name": name, "kind": kind, "config": cfg, "params": history, "state": state})
    text = json.dumps(out)
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
