"""PyTorch reference for `blade-bench train`: the same model, data, batch size, optimiser
and thread count as the Rust trainer, timed the same way. Prints one JSON line."""
import argparse
import gzip
import json
import time

import torch
from torch import nn


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).reshape(dims)


def model(arch, hidden):
    if arch == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1024, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir", required=True)
    p.add_argument("--arch", choices=["mlp", "cnn"], default="cnn")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--samples", type=int, default=10000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lr", type=float, default=0.05)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = idx(f"{a.data_dir}/train-images-idx3-ubyte.gz")[: a.samples].float().div(255.0).reshape(-1, 1, 28, 28)
    y = idx(f"{a.data_dir}/train-labels-idx1-ubyte.gz")[: a.samples].long()
    net = model(a.arch, a.hidden)
    opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(a.samples)
    start = time.perf_counter()
    total = 0.0
    batches = 0
    for i in range(0, a.samples, a.batch):
        index = order[i : i + a.batch]
        xs, ys = x.index_select(0, index), y.index_select(0, index)
        loss = loss_fn(net(xs), ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
        batches += 1
    seconds = time.perf_counter() - start
    print(json.dumps({"samples_per_sec": a.samples / seconds, "loss": total / batches, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
