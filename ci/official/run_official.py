#!/usr/bin/env python3
"""Trains the official MMSR code (HoldenHu/MMSR, unmodified modules) on an official-format folder
and logs its per-epoch test metrics the way the authors' log does, so that our `--protocol
official` runs can be set beside the official code on the same data, seeds and machine.

The official modules are imported from a checkout (`--mmsr`, pinned commit 320d2dc); nothing of
them is copied here. Only what a CPU-only machine needs is changed, in memory, none of it touching
the arithmetic (the same shims as the parity fixture, ../shared/data/mmsr-parity section 9):
`torch.cuda.set_device` is a no-op and `Tensor.cuda` the identity while CUDA is unavailable, the
unused `torch_geometric` import is a stub, and each split's padded size N is computed here and
passed as `train_len` (the official count fails on numpy 2). The training loop is the official
`main.py`'s: `train_and_test` of model.py per epoch (train all samples, StepLR step, test), the
loaders' batch size and shuffling as there; fewer loader workers (the machine has 2 cores).

Writes `--out` as Markdown in the layout of official-beauty/LOG.md (so `mmsr-bench leaderboard
--reference-log` reads it) and the same numbers as JSON beside it.
"""

import argparse
import hashlib
import json
import logging
import math
import os
import pickle
import platform
import sys
import time
import types

import numpy as np
import torch

LOGGED_RUN = {
    # config/VLGraph::4::beauty.yaml and the logged run's folder name (30 codes, K = 3).
    "aggregator": "hete_attention",
    "fusion_type": "asy_mask",
    "alpha": 0.1,
    "auxiliary_info": ["pos", "node_type"],
    "max_relid": 10,
    "n_layer": 1,
    "dropout_local": 0.4,
    "dropout_atten": 0.2,
    "seq_pooling": "last",
    "modality_prediction": False,
    "loss_type": "CE",
    "embedding_size": 128,
    "batch_size": 128,
    "lr": 0.002,
    "lr_dc": 0.0001,
    "lr_dc_step": 40,
    "l2": 0,
    "topk": [5, 20],
    "noise_type": [],
    "noise_level": 0,
    "image_cluster_num": 30,
    "text_cluster_num": 30,
    "link_k": 3,
}


def install_cpu_shims():
    """The in-memory shims that let the CUDA-minded official code run on a CPU."""
    if not torch.cuda.is_available():
        torch.cuda.set_device = lambda *_: None
        torch.Tensor.cuda = lambda self, *_, **__: self
    geometric = types.ModuleType("torch_geometric")
    geometric_nn = types.ModuleType("torch_geometric.nn")
    geometric_nn.GATConv = None  # only the unused `gat_pyg` aggregator needs it
    geometric.nn = geometric_nn
    sys.modules.setdefault("torch_geometric", geometric)
    sys.modules.setdefault("torch_geometric.nn", geometric_nn)


def padded_size(samples):
    """A split's N as the official Data computes it: the longest input or the most nodes."""
    inputs, images, texts = samples[0], samples[1], samples[2]
    longest = max(len(u) for u in inputs)
    most_nodes = max(
        len(set(u)) + len({c for b in i for c in b}) + len({c for b in t for c in b})
        for u, i, t in zip(inputs, images, texts)
    )
    return max(longest, most_nodes)


class Capture(logging.Handler):
    """Keeps the official loop's log lines with their times (the summed loss is only logged)."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append((time.monotonic(), record.getMessage()))


def corrected_ndcg(logged, k):
    """The official NDCG divides a single hit's DCG by the IDCG of k hits; undo that."""
    return logged * sum(1.0 / math.log2(i + 2) for i in range(k))


def source_hashes(path):
    """The sha256 of the official modules used (the parity fixture's manifest lists the same)."""
    names = ["aggregator.py", "data_utils.py", "model.py", "utils.py"]
    return {n: hashlib.sha256(open(os.path.join(path, n), "rb").read()).hexdigest() for n in names}


def markdown(run, epochs):
    head = (
        "| epoch | train s | predict s | summed train loss | HR@5 | MRR@5 | NDCG@5 (as logged) "
        "| HR@20 | MRR@20 | NDCG@20 (as logged) | NDCG@5 corrected | NDCG@20 corrected |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = "".join(
        f"| {e['epoch']} | {e['train_seconds']:.0f} | {e['test_seconds']:.0f} "
        f"| {e['summed_train_loss']:.3f} | {e['HR@5']:.4f} | {e['MRR@5']:.4f} "
        f"| {e['NDCG@5 (as logged)']:.4f} | {e['HR@20']:.4f} | {e['MRR@20']:.4f} "
        f"| {e['NDCG@20 (as logged)']:.4f} | {e['NDCG@5 corrected']:.3f} "
        f"| {e['NDCG@20 corrected']:.3f} |\n"
        for e in epochs
    )
    about = (
        f"# The official MMSR code on `{run['data']}`\n\n"
        "Made by `ci/official/run_official.py` (official model.py sha256 "
        f"`{run['official_sources_sha256']['model.py'][:12]}…`, "
        f"seed {run['seed']}, torch {run['torch']} on {run['device']}, {run['threads']} "
        f"thread(s), {run['workers']} loader worker(s), {run['host']}); "
        f"{run['train_samples']} training and {run['test_samples']} test samples, N = "
        f"{run['train_n']} (train) and {run['test_n']} (test). Metrics ×100 as the official code "
        "computes them; the two corrected columns are the correct single-target NDCG "
        "(logged value × IDCG(K)). The loop is the official main.py's: train on every training "
        "sample, step the schedule, test, every epoch.\n\n"
    )
    return about + head + rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mmsr", required=True, help="a checkout of HoldenHu/MMSR")
    parser.add_argument("--data", required=True, help="an official-format folder")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="loader worker processes")
    parser.add_argument("--out", required=True, help="the Markdown log to write (JSON beside it)")
    args = parser.parse_args()
    if args.epochs < 1 or args.threads < 1 or args.workers < 0:
        parser.error("--epochs and --threads must be at least 1, --workers at least 0")
    for name in ["train.txt", "test.txt", "itemid_imageid_list_cluster30_k3_feature128.pickle"]:
        if not os.path.isfile(os.path.join(args.data, name)):
            sys.exit(f"{args.data}: no {name}; expected an official-format folder (30 codes, K = 3)")
    if not os.path.isfile(os.path.join(args.mmsr, "model.py")):
        sys.exit(f"{args.mmsr}: no model.py; expected a checkout of github.com/HoldenHu/MMSR")

    install_cpu_shims()
    sys.path.insert(0, os.path.abspath(args.mmsr))
    import utils  # noqa: E402  (the official modules)
    from data_utils import Data, get_item_num  # noqa: E402
    from model import VLGraph, train_and_test  # noqa: E402

    torch.set_num_threads(args.threads)
    utils.init_seed(args.seed, True, 0)
    load = lambda name: pickle.load(open(os.path.join(args.data, name), "rb"))  # noqa: E731
    train, test = load("train.txt"), load("test.txt")
    config = dict(LOGGED_RUN, seed=args.seed, dataset="beauty")
    num_item = get_item_num(train, test)
    config["num_node"] = {"beauty": num_item}
    config["cluster_num"] = {"beauty": config["image_cluster_num"]}
    train_n, test_n = padded_size(train), padded_size(test)
    train_data = Data(config, train, config["link_k"], train_len=train_n)
    test_data = Data(config, test, config["link_k"], train_len=test_n)
    codes = "cluster30_k3_feature128"
    model = VLGraph(
        config,
        load("image_cluster30_feature128.pickle"),
        load("text_cluster30_feature128.pickle"),
        load(f"itemid_imageid_list_{codes}.pickle"),
        load(f"itemid_textid_list_{codes}.pickle"),
    )
    loader = lambda data, shuffle: torch.utils.data.DataLoader(  # noqa: E731
        data, num_workers=args.workers, batch_size=model.batch_size, shuffle=shuffle
    )
    train_loader, test_loader = loader(train_data, True), loader(test_data, False)

    logger = logging.getLogger("official")
    logger.setLevel(logging.INFO)
    capture = Capture()
    logger.addHandler(capture)
    run = {
        "data": args.data,
        "official_sources_sha256": source_hashes(args.mmsr),
        "seed": args.seed,
        "torch": torch.__version__,
        "device": "cpu" if not torch.cuda.is_available() else torch.cuda.get_device_name(),
        "threads": args.threads,
        "workers": args.workers,
        "host": f"{platform.machine()}, {os.cpu_count()} logical CPUs",
        "train_samples": len(train[0]),
        "test_samples": len(test[0]),
        "train_n": train_n,
        "test_n": test_n,
    }
    epochs = []
    for epoch in range(args.epochs):
        capture.lines.clear()
        start = time.monotonic()
        result = train_and_test(model, train_loader, test_loader, config["topk"], logger)
        end = time.monotonic()
        marks = {text.strip().split(":")[0]: t for t, text in capture.lines}
        loss = next(text for _, text in capture.lines if text.strip().startswith("Loss"))
        row = {
            "epoch": epoch,
            "train_seconds": marks["start predicting."] - start,
            "test_seconds": end - marks["start predicting."],
            "summed_train_loss": float(loss.split(":")[1]),
        }
        for k, (hit, mrr, ndcg) in zip(config["topk"], result):
            row[f"HR@{k}"] = float(hit)
            row[f"MRR@{k}"] = float(mrr)
            row[f"NDCG@{k} (as logged)"] = float(ndcg)
            row[f"NDCG@{k} corrected"] = corrected_ndcg(float(ndcg), k)
        epochs.append(row)
        print(json.dumps(row), flush=True)
        with open(args.out + ".tmp", "w") as f:
            f.write(markdown(run, epochs))
        os.replace(args.out + ".tmp", args.out)
        with open(args.out + ".json.tmp", "w") as f:
            json.dump({"run": run, "epochs": epochs}, f, indent=1)
        os.replace(args.out + ".json.tmp", os.path.splitext(args.out)[0] + ".json")


if __name__ == "__main__":
    main()
