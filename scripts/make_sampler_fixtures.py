"""Prints, as JSON, the shards PyTorch's DistributedSampler gives each rank.

For data/sampler_test.go: for several data set sizes and numbers of
replicas, without shuffling and with (then also the epoch's permutation
torch drew, so that the test can shard that same order with resgo's code).
"""
import json

import torch
from torch.utils.data.distributed import DistributedSampler

cases = []
for n in (1, 2, 3, 7, 10, 64, 101):
    for replicas in (1, 2, 3, 4, 8):
        for shuffle in (False, True):
            for epoch in (0, 3):
                seed = 5
                ds = list(range(n))
                shards = []
                for rank in range(replicas):
                    s = DistributedSampler(ds, num_replicas=replicas, rank=rank, shuffle=shuffle, seed=seed)
                    s.set_epoch(epoch)
                    shards.append(list(iter(s)))
                g = torch.Generator()
                g.manual_seed(seed + epoch)
                order = torch.randperm(n, generator=g).tolist() if shuffle else list(range(n))
                cases.append({"n": n, "replicas": replicas, "shuffle": shuffle, "epoch": epoch,
                              "order": order, "shards": shards, "len": len(s)})
print(json.dumps({"torch": torch.__version__, "cases": cases}))
