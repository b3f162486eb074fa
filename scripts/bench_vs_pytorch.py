#!/usr/bin/python3
"""Times the same model and batch in resgo and in PyTorch, in one run, and
prints both and their ratio.

    /usr/bin/python3 scripts/bench_vs_pytorch.py --arch resnet18 --batch 1 --mode infer

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


def torch_side(args):
    """Runs in a child process: times PyTorch and prints one JSON line."""
    import torch
    import torchvision
    torch.set_num_threads(args.threads)
    m = torchvision.models.__dict__[args.arch]().eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    times = []
    with torch.no_grad():
        for i in range(args.warmup + args.runs):
            t = time.perf_counter()
            m(x)
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
    p.add_argument("--mode", default="infer", choices=["infer"])
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
              "--runs", str(args.runs), "--warmup", str(args.warmup)]
    rows = []
    for r in range(args.repeat):
        g = run_json([RESGO, "bench", "--mode", args.mode, "--threads", str(args.threads), "--json"] + common, env)
        t = run_json([sys.executable, __file__, "--torch-child", "--threads", str(args.threads)] + common, env)
        rows.append((g, t))
        print("run %d: resgo %.2f ms (%s, peak RSS %.0f MiB)   PyTorch %s %.2f ms (peak RSS %.0f MiB)   PyTorch/resgo %.2fx"
              % (r + 1, g["median_ms"], g["backend"], g["peak_rss_mib"], t["torch"], t["median_ms"],
                 t["peak_rss_mib"], t["median_ms"] / g["median_ms"]))
    g = min(rows, key=lambda x: x[0]["median_ms"])[0]
    t = min(rows, key=lambda x: x[1]["median_ms"])[1]
    print("%s %s batch %d %dx%d, %d threads: resgo %.2f ms, PyTorch %.2f ms, speedup %.2fx; peak RSS resgo %.0f MiB, PyTorch %.0f MiB"
          % (args.arch, args.mode, args.batch, args.size, args.size, args.threads, g["median_ms"],
             t["median_ms"], t["median_ms"] / g["median_ms"], g["peak_rss_mib"], t["peak_rss_mib"]))


if __name__ == "__main__":
    main()
