#!/usr/bin/env python3
"""The reference a user holds our sequence models to: RecBole's own GRU4Rec and SASRec classes,
trained and evaluated on the samples of an official-format folder the way `mmsr-bench run
--official-dir` trains and evaluates ours, timed on the same cores.

Only the model classes are RecBole's (imported from the installed `recbole` package, unmodified;
its config and dataset objects are replaced by the few keys and the item count the classes read).
Batching is ours on both sides, so the comparison is of the models and their frameworks, not of
data loaders: batches of 128 training samples in a seeded shuffled order, inputs right-padded to
the batch's longest, the full-softmax cross-entropy, Adam at 0.002; test batches of 64, every
item scored, a target's rank 1 + #{items scored higher} + #{items scored equal with a lower id}
(spec section 7.3). Hyperparameters are ours (width 128; GRU4Rec one layer, dropout 0.3; SASRec
two blocks of two heads, feed-forward 512, dropout 0.5).

    python benchmarks/recbole_reference.py --data ../shared/data/official-beauty --model GRU4Rec \
        --threads 2 --out gru4rec.json

Needs `pip install recbole==1.2.1 torch==2.11.0 tensorboard thop` (RecBole imports the last two
at load time). Writes the timings, peak RSS and test metrics as JSON.
"""

import argparse
import json
import math
import pickle
import platform
import resource
import time

import numpy as np
import torch

RECBOLE_CONFIG = {
    "USER_ID_FIELD": "user_id",
    "ITEM_ID_FIELD": "item_id",
    "LIST_SUFFIX": "_list",
    "ITEM_LIST_LENGTH_FIELD": "item_length",
    "NEG_PREFIX": "neg_",
    "MAX_ITEM_LIST_LENGTH": 50,
    "device": torch.device("cpu"),
    "loss_type": "CE",
    "embedding_size": 128,
    "hidden_size": 128,
}

MODELS = {
    "GRU4Rec": {"num_layers": 1, "dropout_prob": 0.3},
    "SASRec": {
        "n_layers": 2,
        "n_heads": 2,
        "inner_size": 512,
        "hidden_dropout_prob": 0.5,
        "attn_dropout_prob": 0.5,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        "initializer_range": 0.02,
    },
}


class ItemCount:
    """What RecBole's sequential models read from its Dataset: the number of item ids (with 0)."""

    def __init__(self, items):
        self.items = items

    def num(self, _field):
        return self.items


def build(name, num_items):
    if name == "GRU4Rec":
        from recbole.model.sequential_recommender.gru4rec import GRU4Rec as model
    else:
        from recbole.model.sequential_recommender.sasrec import SASRec as model
    config = dict(RECBOLE_CONFIG, **MODELS[name])
    return model(config, ItemCount(num_items + 1))


def batch(inputs, targets, rows):
    """RecBole's interaction fields for `rows`: right-padded inputs, lengths, targets (1-based)."""
    width = max(1, max(len(inputs[r]) for r in rows))
    items = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        items[i, : len(inputs[r])] = inputs[r]
    return {
        "item_id_list": torch.from_numpy(items),
        "item_length": torch.tensor([max(1, len(inputs[r])) for r in rows]),
        "item_id": torch.tensor([targets[r] for r in rows]),
    }


def ranks(scores, targets):
    """Spec 7.3 ranks of 0-based `targets` in `scores` [B, I]."""
    target = scores.gather(1, targets.unsqueeze(1))
    higher = (scores > target).sum(1)
    columns = torch.arange(scores.shape[1]).unsqueeze(0)
    tied_before = ((scores == target) & (columns < targets.unsqueeze(1))).sum(1)
    return 1 + higher + tied_before


def metrics(all_ranks, ks=(5, 20)):
    r = np.asarray(all_ranks, dtype=np.float64)
    out = {}
    for k in ks:
        hit = r <= k
        out[f"HR@{k}"] = float(hit.mean())
        out[f"NDCG@{k}"] = float((hit / np.log2(r + 1)).mean())
        out[f"MRR@{k}"] = float((hit / r).mean())
    return out


def cpu_name():
    """The CPU as our result files name it: model name, family and model."""
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return f"{fields.get('model name')} (family {fields.get('cpu family')} model {fields.get('model')})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="official-format folder (train.txt, test.txt)")
    parser.add_argument("--model", choices=sorted(MODELS), default="GRU4Rec")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--max-batches", type=int, default=0, help="train at most this many batches (0: the epoch)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    def load(name):
        with open(f"{args.data}/{name}", "rb") as f:
            return pickle.load(f)

    train, test = load("train.txt"), load("test.txt")
    num_items = max(max(max(s, default=0) for s in split[0]) for split in (train, test))
    num_items = max(num_items, max(train[3]), max(test[3]))
    model = build(args.model, num_items)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.002)

    order = np.random.default_rng(args.seed).permutation(len(train[0]))
    chunks = [order[i : i + 128] for i in range(0, len(order), 128)]
    if args.max_batches:
        chunks = chunks[: args.max_batches]
    model.train()
    start, loss_sum = time.perf_counter(), 0.0
    for rows in chunks:
        loss = model.calculate_loss(batch(train[0], train[3], rows))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss_sum += loss.item()
    train_seconds = time.perf_counter() - start

    model.eval()
    all_ranks = []
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(test[0]), 64):
            rows = range(i, min(i + 64, len(test[0])))
            fields = batch(test[0], test[3], rows)
            scores = model.full_sort_predict(fields)[:, 1:]  # column 0 is the padding id
            all_ranks.extend(ranks(scores, fields["item_id"] - 1).tolist())
    test_seconds = time.perf_counter() - start

    result = {
        "library": "recbole",
        "model": args.model,
        "recbole_version": __import__("recbole").__version__,
        "torch_version": torch.__version__,
        "threads": args.threads,
        "seed": args.seed,
        "cpu": cpu_name(),
        "train_samples": int(sum(len(c) for c in chunks)),
        "train_batches": len(chunks),
        "train_seconds": train_seconds,
        "train_ms_per_batch": 1000 * train_seconds / len(chunks),
        "train_loss": loss_sum / len(chunks),
        "test_samples": len(test[0]),
        "test_seconds": test_seconds,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "test": metrics(all_ranks),
    }
    assert math.isfinite(result["train_loss"])
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
