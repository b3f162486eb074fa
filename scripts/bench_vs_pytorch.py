#!/usr/bin/python3
"""Times the same model and batch in resgo and in PyTorch, in one run, and
prints both and their ratio.

    /usr/bin/python3 scripts/bench_vs_pytorch.py --arch resnet18 --batch 1 --mode infer
    /usr/bin/python3 scripts/bench_vs_pytorch.py --arch resnet18 --batch 16 --mode train
    /usr/bin/python3 scripts/bench_vs_pytorch.py --arch resnet20 --batch 128 --size 28 --in-channels 1 --num-classes 10 --mode train

--mode train times one training step (forward, cross-entropy, backward, Adam
step), as the tutorial's loop does, with --transfer all|head|from:layerK
choosing what trains. resnet20 is the CIFAR-style network of the paper
(16/32/64 channels, projection shortcuts), defined here as resgo builds it.

PyTorch runs as pytorch-baseline.md describes: OMP_NUM_THREADS and
torch.set_num_threads set to the same thread count as resgo, eval mode,
no_grad, random input, median of --runs timed runs after --warmup. Each side
runs in its own process (so its peak RSS is its own), and the pair is
repeated --repeat times, alternating, because the machine is noisy.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESGO = os.path.join(HERE, "..", "bin", "resgo")


def cifar_resnet(torch, n, in_ch, classes):
    """ResNet-6n+2 of the paper's section 4.2 with torchvision's blocks."""
    from torchvision.models.resnet import BasicBlock
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(in_ch, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.relu = nn.ReLU(inplace=True)
            layers, inp = [], 16
            for i, planes in enumerate([16, 32, 64]):
                blocks = []
                for j in range(n):
                    stride = 2 if i > 0 and j == 0 else 1
                    ds = None
                    if stride != 1 or inp != planes:
                        ds = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
                    blocks.append(BasicBlock(inp, planes, stride, ds))
                    inp = planes
                layers.append(nn.Sequential(*blocks))
            self.layer1, self.layer2, self.layer3 = layers
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(64, classes)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(torch.flatten(self.avgpool(x), 1))
    return Net()


def torch_side(args):
    """Runs in a child process: times PyTorch and prints one JSON line."""
    import torch
    import torchvision
    torch.set_num_threads(args.threads)
    cifar = {"resnet20": 3, "resnet32": 5, "resnet44": 7, "resnet56": 9, "resnet110": 18}
    if args.arch in cifar:
        m = cifar_resnet(torch, cifar[args.arch], args.in_channels, args.num_classes)
    else:
        m = torchvision.models.__dict__[args.arch](num_classes=args.num_classes)
    x = torch.randn(args.batch, args.in_channels, args.size, args.size)
    times = []
    if args.mode == "infer":
        m.eval()
        step = lambda: m(x)
    else:
        # Freeze as resgo's transfer modes do: frozen parts in eval mode.
        frozen = []
        if args.transfer == "head":
            frozen = [c for n, c in m.named_children() if n != "fc"]
        elif args.transfer.startswith("from:layer"):
            k = int(args.transfer[len("from:layer"):])
            frozen = [m.conv1, m.bn1] + [getattr(m, "layer%d" % i) for i in range(1, k)]
        for f in frozen:
            for p in f.parameters():
                p.requires_grad = False
        opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-4)
        labels = torch.arange(args.batch) % args.num_classes
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            m.train()
            for f in frozen:
                f.eval()
            opt.zero_grad()
            loss = loss_fn(m(x), labels)
            loss.backward()
            opt.step()
    ctx = torch.no_grad() if args.mode == "infer" else torch.enable_grad()
    with ctx:
        for i in range(args.warmup + args.runs):
            t = time.perf_counter()
            step()
            if i >= args.warmup:
                times.append((time.perf_counter() - t) * 1000)
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2
    with open("/proc/self/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
    print(json.dumps({"median_ms": med, "min_ms": times[0], "peak_rss_mib": rss,
                      "torch": torch.__version__}))


def run_json(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--mode", default="infer", choices=["infer", "train"])
    p.add_argument("--in-channels", type=int, default=3)
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--transfer", default="all")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--torch-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_child:
        torch_side(args)
        return

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads))
    common = ["--arch", args.arch, "--batch", str(args.batch), "--size", str(args.size),
              "--runs", str(args.runs), "--warmup", str(args.warmup), "--mode", args.mode,
              "--in-channels", str(args.in_channels), "--num-classes", str(args.num_classes),
              "--transfer", args.transfer]
    rows = []
    for r in range(args.repeat):
        g = run_json([RESGO, "bench", "--threads", str(args.threads), "--json"] + common, env)
        t = run_json([sys.executable, __file__, "--torch-child", "--threads", str(args.threads)] + common, env)
        rows.append((g, t))
        print("run %d: resgo %.2f ms (%s, peak RSS %.0f MiB)   PyTorch %s %.2f ms (peak RSS %.0f MiB)   PyTorch/resgo %.2fx"
              % (r + 1, g["median_ms"], g["backend"], g["peak_rss_mib"], t["torch"], t["median_ms"],
                 t["peak_rss_mib"], t["median_ms"] / g["median_ms"]))
    g = min(rows, key=lambda x: x[0]["median_ms"])[0]
    t = min(rows, key=lambda x: x[1]["median_ms"])[1]
    ips = lambda ms: args.batch / ms * 1000
    print("%s %s batch %d %dx%d, %d threads: resgo %.2f ms (%.1f images/s), PyTorch %.2f ms (%.1f images/s), speedup %.2fx; peak RSS resgo %.0f MiB, PyTorch %.0f MiB"
          % (args.arch, args.mode, args.batch, args.size, args.size, args.threads, g["median_ms"], ips(g["median_ms"]),
             t["median_ms"], ips(t["median_ms"]), t["median_ms"] / g["median_ms"], g["peak_rss_mib"], t["peak_rss_mib"]))


if __name__ == "__main__":
    main()
