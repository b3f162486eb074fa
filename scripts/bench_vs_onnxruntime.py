#!/usr/bin/python3
"""Times the same torchvision model and batch in resgo and in ONNX Runtime
(CPU, all graph optimizations) in one run, and prints both and their ratio.

ONNX Runtime comes from the npm package onnxruntime-node; install it once
into a folder of your choice (the CPU library ships inside the package):

    mkdir -p /tmp/ort && cd /tmp/ort && ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node@1.30.0
    /usr/bin/python3 scripts/bench_vs_onnxruntime.py --ort /tmp/ort --arch resnet50 --batch 1

The model is exported from Debian's torchvision with torch.onnx (random
weights: speed does not depend on them), and ONNX Runtime runs it with the
same number of intra-op threads as resgo, median of --runs after --warmup.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
RESGO = os.path.join(HERE, "..", "bin", "resgo")

NODE = r"""
const ort = require(process.argv[2]);
const [model, batch, size, threads, runs, warmup] = process.argv.slice(3).map((v, i) => i ? Number(v) : v);
(async () => {
  const s = await ort.InferenceSession.create(model, {graphOptimizationLevel: 'all',
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential'});
  const x = new ort.Tensor('float32', Float32Array.from({length: batch * 3 * size * size}, () => Math.random() * 2 - 1), [batch, 3, size, size]);
  const feeds = {[s.inputNames[0]]: x};
  const times = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t = process.hrtime.bigint();
    await s.run(feeds);
    if (i >= warmup) times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  const n = times.length, med = n % 2 ? times[(n - 1) / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
  const rss = require('fs').readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s+(\d+)/)[1] / 1024;
  console.log(JSON.stringify({median_ms: med, min_ms: times[0], peak_rss_mib: rss}));
})();
"""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ort", required=True, help="folder where onnxruntime-node is installed (node_modules inside)")
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()

    import torch
    import torchvision
    tmp = tempfile.mkdtemp(prefix="resgo-ort-")
    model = os.path.join(tmp, args.arch + ".onnx")
    m = torchvision.models.__dict__[args.arch]().eval()
    torch.onnx.export(m, torch.randn(args.batch, 3, args.size, args.size), model, opset_version=13,
                      input_names=["x"], output_names=["logits"])
    script = os.path.join(tmp, "bench.js")
    with open(script, "w") as f:
        f.write(NODE)
    ort = os.path.join(os.path.abspath(args.ort), "node_modules", "onnxruntime-node")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    best_g, best_o = None, None
    for r in range(args.repeat):
        g = json.loads(subprocess.run([RESGO, "bench", "--arch", args.arch, "--batch", str(args.batch), "--size", str(args.size),
                                       "--threads", str(args.threads), "--runs", str(args.runs), "--warmup", str(args.warmup), "--json"],
                                      env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        o = json.loads(subprocess.run(["node", script, ort, model, str(args.batch), str(args.size), str(args.threads),
                                       str(args.runs), str(args.warmup)],
                                      env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        print("run %d: resgo %.2f ms (peak RSS %.0f MiB)   ONNX Runtime %.2f ms (peak RSS %.0f MiB)   ORT/resgo %.2fx"
              % (r + 1, g["median_ms"], g["peak_rss_mib"], o["median_ms"], o["peak_rss_mib"], o["median_ms"] / g["median_ms"]))
        best_g = g if best_g is None or g["median_ms"] < best_g["median_ms"] else best_g
        best_o = o if best_o is None or o["median_ms"] < best_o["median_ms"] else best_o
    print("%s infer batch %d %dx%d, %d threads: resgo %.2f ms, ONNX Runtime %.2f ms, ORT/resgo %.2fx; peak RSS resgo %.0f MiB, ONNX Runtime %.0f MiB"
          % (args.arch, args.batch, args.size, args.size, args.threads, best_g["median_ms"], best_o["median_ms"],
             best_o["median_ms"] / best_g["median_ms"], best_g["peak_rss_mib"], best_o["peak_rss_mib"]))


if __name__ == "__main__":
    main()
