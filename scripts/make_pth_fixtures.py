#!/usr/bin/python3
"""Write small PyTorch .pth fixtures for resgo's checkpoint tests.

Usage: /usr/bin/python3 scripts/make_pth_fixtures.py OUTDIR [--tiny-only]

Files written to OUTDIR:
  tiny-zip.pth        tiny state dict, zip format (top folder "tiny-zip", not "archive")
  tiny-legacy.pth     the same, legacy format (_use_new_zipfile_serialization=False)
  tiny-v1-legacy.pth  the same, legacy format with tensors pickled through
                      torch._utils._rebuild_tensor(storage, offset, size, stride) with a
                      torch.Size, the form torch < 0.4 wrote
  tiny-tar.pth        the same in the tar format of torch < 0.1.10, which torchvision's
                      oldest files (resnet34-333f7ec4.pth, resnet18-5c106cde.pth) use;
                      torch 1.13 cannot write it any more, so save_tar_format below
                      writes it and torch.load checks it
  tiny-nested.pth     a training checkpoint (zip format) holding the tiny state dict under
                      "state_dict" next to an epoch number, an optimizer-like dict,
                      an argparse.Namespace and a numpy scalar
  tiny-expected.json  {"keys": [...in order...], "tensors": {key: {...}}}: for each key
                      of the tiny state dict its shape, dtype, sum, first 8 values,
                      SHA-256 (as below) and all its values (float64, row-major)
  resnet18-zip.pth    torchvision resnet18, torch.manual_seed(0), not pretrained (BatchNorm
                      running statistics and counters then also set from that seed, so
                      that they are not all 0 and 1), zip format
  resnet18-legacy.pth the same, legacy format
  resnet18-tar.pth    the same, tar format
  resnet18-expected.json the same without "values": shape, dtype, sum, first 8 values
                      and the SHA-256 of the little-endian bytes of the contiguous
                      tensor (numpy's tobytes()), so every value can be checked exactly

With --tiny-only only the tiny files are written; that is how checkpoint/testdata
is refreshed: /usr/bin/python3 scripts/make_pth_fixtures.py checkpoint/testdata --tiny-only

The tiny state dict exercises what a loader must handle: a transposed view that
shares its storage with another entry, a slice with a storage offset, int64
num_batches_tracked (a 0-d tensor), float16 / float64 / int32 / bool tensors, and
an empty tensor. The tiny files are small enough to commit to checkpoint/testdata.
"""

import argparse
import collections
import hashlib
import io
import json
import os
import pickle
import struct
import sys
import tarfile

import numpy
import torch
import torch._utils


def tiny_state_dict():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(3, 4, generator=g)
    big = torch.arange(10, dtype=torch.float32) * 0.5 - 1.0
    sd = collections.OrderedDict()
    sd["conv.weight"] = torch.randn(2, 3, 2, 2, generator=g)
    sd["fc.weight"] = w
    sd["fc.weight_t"] = w.t()  # non-contiguous view sharing fc.weight's storage
    sd["slice"] = big[2:7]  # storage offset 2 into a 10-element storage
    sd["strided"] = big[1::3]  # offset 1, stride 3, same storage as slice
    sd["bn.running_mean"] = torch.tensor([0.25, -1.5, 3.0])
    sd["bn.num_batches_tracked"] = torch.tensor(7, dtype=torch.int64)
    sd["half"] = torch.tensor([1.0, -2.5, 0.099975586, 65504.0], dtype=torch.float16)
    sd["double"] = torch.tensor([[1.0 / 3.0, -2.0], [1e-3, 4.0]], dtype=torch.float64)
    sd["int32"] = torch.tensor([-3, 0, 2147483647], dtype=torch.int32)
    sd["mask"] = torch.tensor([True, False, True])
    sd["empty"] = torch.zeros(0, 5)
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("bn", {"version": 2})])
    return sd


class _OldTensor:
    """Pickles a tensor the way torch < 0.4 did: _rebuild_tensor(storage, offset, size, stride)."""

    def __init__(self, t):
        self.t = t

    def __reduce__(self):
        t = self.t
        return (torch._utils._rebuild_tensor, (t.storage(), t.storage_offset(), t.size(), t.stride()))


def save_tar_format(sd, path):
    """Writes the state dict sd in the tar format of torch < 0.1.10.

    The archive has three records, as torch.serialization.legacy_load reads
    them: "pickle" (the object; tensors are persistent ids: their keys as
    strings), "tensors" (per tensor: its key, storage key and type, then rank,
    sizes, strides and storage offset) and "storages" (per storage: key,
    location and type, then an int64 element count and the raw elements;
    then a list of storage views). "slice" refers to its storage through a
    view, which that format allowed.
    """
    storages = collections.OrderedDict()  # key -> (storage type, raw bytes, numel)
    tensors = collections.OrderedDict()  # key -> (tensor, storage key, offset)
    views = []
    ptr_keys = {}

    def storage_key(t):
        st = t.storage()
        ptr = (st.data_ptr(), st.size(), t.dtype)
        if ptr not in ptr_keys:
            key = 1000 + len(ptr_keys)
            ptr_keys[ptr] = key
            full = torch.tensor([], dtype=t.dtype).set_(st)
            storages[key] = (getattr(torch, st.pickle_storage_type()), tensor_bytes(full), full.numel())
        return ptr_keys[ptr]

    for name, t in sd.items():
        key = len(tensors) + 1
        skey, offset = storage_key(t), t.storage_offset()
        if name == "slice":
            views.append((3000, skey, offset, t.numel()))
            skey, offset = 3000, 0
        tensors[key] = (t, skey, offset)

    def persistent_id(obj):
        if isinstance(obj, torch.Tensor):
            for key, (t, _, _) in tensors.items():
                if t is obj:
                    return str(key)
        return None

    def record(fill):
        buf = io.BytesIO()
        fill(buf)
        return buf.getvalue()

    def fill_pickle(f):
        p = pickle.Pickler(f, protocol=2)
        p.persistent_id = persistent_id
        p.dump(collections.OrderedDict(sd.items()))

    def fill_tensors(f):
        pickle.dump(len(tensors), f, protocol=2)
        for key, (t, skey, offset) in tensors.items():
            pickle.dump((key, skey, type(t)), f, protocol=2)
            f.write(struct.pack("<i", t.dim()) + b"\0\0\0\0")
            f.write(struct.pack("<%dq" % t.dim(), *t.size()))
            f.write(struct.pack("<%dq" % t.dim(), *t.stride()))
            f.write(struct.pack("<q", offset))

    def fill_storages(f):
        pickle.dump(len(storages), f, protocol=2)
        for key, (stype, raw, numel) in storages.items():
            pickle.dump((key, "cpu", stype), f, protocol=2)
            f.write(struct.pack("<q", numel))
            f.write(raw)
        pickle.dump(views, f, protocol=2)

    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, fill in (("pickle", fill_pickle), ("tensors", fill_tensors), ("storages", fill_storages)):
            data = record(fill)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.numpy().tobytes()


def describe(sd, all_values):
    """Returns {"keys": [...], "tensors": {key: {...}}} describing sd."""
    out = collections.OrderedDict()
    for k, t in sd.items():
        flat = t.detach().reshape(-1).to(torch.float64)
        e = collections.OrderedDict()
        e["shape"] = list(t.shape)
        e["dtype"] = str(t.dtype).replace("torch.", "")
        e["sum"] = float(flat.sum().item()) if flat.numel() else 0.0
        e["first"] = [float(v) for v in flat[:8].tolist()]
        e["sha256"] = hashlib.sha256(tensor_bytes(t)).hexdigest()
        if all_values:
            e["values"] = [float(v) for v in flat.tolist()]
        out[k] = e
    return collections.OrderedDict([("keys", list(sd.keys())), ("tensors", out)])


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    tiny_only = "--tiny-only" in sys.argv[2:]
    os.makedirs(outdir, exist_ok=True)

    sd = tiny_state_dict()
    torch.save(sd, os.path.join(outdir, "tiny-zip.pth"))
    torch.save(sd, os.path.join(outdir, "tiny-legacy.pth"), _use_new_zipfile_serialization=False)
    old = collections.OrderedDict((k, _OldTensor(t)) for k, t in sd.items())
    torch.save(old, os.path.join(outdir, "tiny-v1-legacy.pth"), _use_new_zipfile_serialization=False)
    save_tar_format(sd, os.path.join(outdir, "tiny-tar.pth"))
    nested = {
        "epoch": 3,
        "best_acc": 0.81,
        "state_dict": sd,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1]}]},
        "args": argparse.Namespace(lr=0.1, batch_size=16),
        "best_np": numpy.float64(0.5),
    }
    torch.save(nested, os.path.join(outdir, "tiny-nested.pth"))
    write_json(os.path.join(outdir, "tiny-expected.json"), describe(sd, True))

    # Check that torch itself reads back what we wrote.
    for name in ("tiny-zip.pth", "tiny-legacy.pth", "tiny-v1-legacy.pth", "tiny-tar.pth", "tiny-nested.pth"):
        back = torch.load(os.path.join(outdir, name))
        if name == "tiny-nested.pth":
            back = back["state_dict"]
        for k, t in sd.items():
            assert torch.equal(back[k], t), (name, k)

    if tiny_only:
        return
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18()  # random init, not pretrained
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(int(torch.randint(1, 1000, ()).item()))
    rsd = model.state_dict()
    torch.save(rsd, os.path.join(outdir, "resnet18-zip.pth"))
    torch.save(rsd, os.path.join(outdir, "resnet18-legacy.pth"), _use_new_zipfile_serialization=False)
    save_tar_format(rsd, os.path.join(outdir, "resnet18-tar.pth"))
    back = torch.load(os.path.join(outdir, "resnet18-tar.pth"))
    assert all(torch.equal(back[k], t) for k, t in rsd.items())
    write_json(os.path.join(outdir, "resnet18-expected.json"), describe(rsd, False))


if __name__ == "__main__":
    main()
