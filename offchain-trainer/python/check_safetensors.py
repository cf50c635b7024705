"""Load a BLADE-FL model saved as safetensors into plain PyTorch modules and print the
logits of a fixed input as JSON: the trainer's tests compare them with libtorch's.

usage: check_safetensors.py MODEL.safetensors {mlp,cnn,dp-cnn,simple-cnn} CHANNELS HEIGHT WIDTH
"""
import json
import math
import sys

import torch
from safetensors.torch import load_file


def build(kind, state, c, h, w):
    classes = state["fc3.bias" if kind == "simple-cnn" else "fc2.bias"].shape[0]
    if kind == "mlp":
        hidden = state["fc1.bias"].shape[0]
        net = torch.nn.ModuleDict({
            "fc1": torch.nn.Linear(c * h * w, hidden),
            "fc2": torch.nn.Linear(hidden, classes),
        })
        forward = lambda x: net["fc2"](torch.relu(net["fc1"](x.flatten(1))))
    elif kind == "dp-cnn":
        side = lambda s: ((s + 6 - 8) // 2 + 1 - 1 - 4) // 2 + 1 - 1
        net = torch.nn.ModuleDict({
            "conv1": torch.nn.Conv2d(c, 16, 8, stride=2, padding=3),
            "conv2": torch.nn.Conv2d(16, 32, 4, stride=2),
            "fc1": torch.nn.Linear(32 * side(h) * side(w), 32),
            "fc2": torch.nn.Linear(32, classes),
        })

        def forward(x):
            x = torch.max_pool2d(torch.tanh(net["conv1"](x)), 2, 1)
            x = torch.max_pool2d(torch.tanh(net["conv2"](x)), 2, 1)
            return net["fc2"](torch.tanh(net["fc1"](x.flatten(1))))
    elif kind == "simple-cnn":
        side = lambda s: ((s - 4) // 2 - 4) // 2
        net = torch.nn.ModuleDict({
            "conv1": torch.nn.Conv2d(c, 6, 5),
            "conv2": torch.nn.Conv2d(6, 16, 5),
            "fc1": torch.nn.Linear(16 * side(h) * side(w), 120),
            "fc2": torch.nn.Linear(120, 84),
            "fc3": torch.nn.Linear(84, classes),
        })

        def forward(x):
            x = torch.max_pool2d(torch.relu(net["conv1"](x)), 2)
            x = torch.max_pool2d(torch.relu(net["conv2"](x)), 2)
            x = torch.relu(net["fc1"](x.flatten(1)))
            return net["fc3"](torch.relu(net["fc2"](x)))
    else:
        side = lambda s: ((s - 4) // 2 - 4) // 2
        flat = 64 * side(h) * side(w)
        net = torch.nn.ModuleDict({
            "conv1": torch.nn.Conv2d(c, 32, 5),
            "conv2": torch.nn.Conv2d(32, 64, 5),
            "fc1": torch.nn.Linear(flat, 128),
            "fc2": torch.nn.Linear(128, classes),
        })

        def forward(x):
            x = torch.max_pool2d(torch.relu(net["conv1"](x)), 2)
            x = torch.max_pool2d(torch.relu(net["conv2"](x)), 2)
            return net["fc2"](torch.relu(net["fc1"](x.flatten(1))))
    net.load_state_dict(state, strict=True)
    return forward


def main():
    path, kind, c, h, w = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    forward = build(kind, load_file(path), c, h, w)
    n = 2 * c * h * w
    x = torch.tensor([math.sin(0.001 * i) * 0.5 + 0.5 for i in range(n)]).view(2, c, h, w)
    with torch.no_grad():
        print(json.dumps(forward(x).flatten().tolist()))


if __name__ == "__main__":
    main()
