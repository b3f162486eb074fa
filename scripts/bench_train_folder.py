#!/usr/bin/python3
"""Times one training epoch on a folder of JPEG photos, the data loader
included, in resgo and in PyTorch (the tutorial's train.py loop), in one
run, and prints both in images per second and their ratio.

    /usr/bin/python3 scripts/bench_train_folder.py --arch resnet18 --images 320
    RESGO_CONV=auto /usr/bin/python3 scripts/bench_train_folder.py --arch resnet18

The folder is --data (a folder of class folders), or one made here in a
temporary folder: --images JPEGs of 500x375 in 5 classes, about the size
and JPEG entropy of the tutorial's flower_photos (smooth colour fields with
detail and noise, quality 90, about 60 KB each), with a fixed seed.

resgo runs `resgo train --data DIR --arch A --epochs 1 --batch 16
--val-split 0`, with its defaults (Adam 1e-4, the tutorial's training
transform, one decoding goroutine per CPU); its time is history.csv's
seconds (loading, decoding, augmenting, forward, backward, step).

PyTorch runs the loop of the tutorial's train.py: ImageFolder,
RandomResizedCrop(224), RandomHorizontalFlip, ToTensor, Normalize,
DataLoader(batch 16, shuffle, num_workers = min(CPUs, 16, 8)), Adam 1e-4,
CrossEntropyLoss, torch's default thread count; its time runs from the
start of the epoch's loop (workers starting included) to its end. Both
start from random weights. Each side runs in its own process, alternating,
--repeat times.
"""
import argparse
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESGO = os.path.join(HERE, "..", "bin", "resgo")

TORCH_LOOP = r"""
import os, sys, time, torch, torchvision
from torchvision import transforms, datasets
data, arch, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
tf = transforms.Compose([transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(),
                         transforms.ToTensor(), transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
ds = datasets.ImageFolder(data, transform=tf)
nw = min([os.cpu_count(), batch if batch > 1 else 0, 8])
loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=nw)
torch.manual_seed(0)
net = getattr(torchvision.models, arch)(num_classes=len(ds.classes))
net.train()
opt = torch.optim.Adam(net.parameters(), lr=1e-4)
loss_fn = torch.nn.CrossEntropyLoss()
t0 = time.perf_counter()
n = 0
for x, y in loader:
    opt.zero_grad()
    loss = loss_fn(net(x), y)
    loss.backward()
    opt.step()
    n += len(y)
print(n, time.perf_counter() - t0)
"""


def make_photos(root, images, classes, seed):
    """Writes images JPEGs of 500x375 into classes class folders."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(seed)
    for i in range(images):
        c = i % classes
        d = os.path.join(root, "class%d" % c)
        os.makedirs(d, exist_ok=True)
        # A smooth colour field (a coarse random grid, enlarged), some
        # detail at middle frequencies and sensor-like noise.
        coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((500, 375), Image.BICUBIC)
        mid = Image.fromarray(rng.integers(0, 256, (47, 63, 3), dtype=np.uint8)).resize((500, 375), Image.BILINEAR)
        img = 0.7 * np.asarray(coarse, np.float32) + 0.3 * np.asarray(mid, np.float32)
        img += rng.normal(0, 6, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(os.path.join(d, "%04d.jpg" % i), quality=90)


def run_resgo(data, arch, batch):
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([RESGO, "train", "--data", data, "--arch", arch, "--epochs", "1", "--batch", str(batch),
                        "--val-split", "0", "--quiet", "--out", out], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "history.csv")) as f:
            rows = [line.strip().split(",") for line in f]
        head, last = rows[0], rows[-1]
        return float(last[head.index("seconds")])


def run_torch(data, arch, batch):
    out = subprocess.run([sys.executable, "-c", TORCH_LOOP, data, arch, str(batch)], check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--data", help="folder of class folders (default: make --images photos)")
    ap.add_argument("--images", type=int, default=320)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    tmp = None
    data = a.data
    if data is None:
        tmp = tempfile.TemporaryDirectory()
        data = tmp.name
        make_photos(data, a.images, a.classes, 0)
    n = sum(len(files) for _, _, files in os.walk(data))
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(data) for f in files)
    print("%d images in %s (%.0f KB each), %s, batch %d, %d CPUs" % (n, data, size / n / 1024, a.arch, a.batch, os.cpu_count()))
    rs, ts = [], []
    for r in range(a.repeat):
        rs.append(run_resgo(data, a.arch, a.batch))
        ts.append(run_torch(data, a.arch, a.batch))
        print("run %d: resgo %.1f s (%.2f images/s)   PyTorch %.1f s (%.2f images/s)   ratio %.2fx" %
              (r + 1, rs[-1], n / rs[-1], ts[-1], n / ts[-1], ts[-1] / rs[-1]))
    r, t = sorted(rs)[len(rs) // 2], sorted(ts)[len(ts) // 2]
    print("%s training epoch, %d JPEGs, loader included: resgo %.2f images/s, PyTorch %.2f images/s, speedup %.2fx" %
          (a.arch, n, n / r, n / t, t / r))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
