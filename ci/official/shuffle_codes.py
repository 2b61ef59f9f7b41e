#!/usr/bin/env python3
"""Writes a copy of an official-format MMSR folder whose modality codes belong to other items:
the null of the reproduction's code experiments (issue 22 item 2).

A seeded permutation p of the item ids 1..I gives item x the text and image code lists of item
p(x), everywhere the folder holds them: the per-item lists (itemid_*id_list_*.pickle) and every
sample's per-position bundles in train.txt and test.txt. Sequences, targets, users and the
code-cluster features are copied unchanged, so the codes keep their number, their sizes and
their links to each other, but no longer say anything about the item they hang on. Standard
library only; deterministic for a seed.

    python3 ci/official/shuffle_codes.py --data ../shared/data/official-beauty --seed 2023 \\
        --out data/official-beauty-shuffled-codes
"""

import argparse
import os
import pickle
import random
import shutil
import sys


def load(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def dump(value, path):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(value, f, protocol=4)
    os.replace(tmp, path)


def bundle(codes):
    """A sample's bundle for an item with these codes: the official producer writes an empty
    bundle where the per-item list holds only zeros (an item without that modality)."""
    return [] if all(c == 0 for c in codes) else list(codes)


def code_list_files(folder):
    """The per-item code lists: (text file, image file)."""
    names = sorted(os.listdir(folder))
    text = [n for n in names if n.startswith("itemid_textid_list") and n.endswith(".pickle")]
    image = [n for n in names if n.startswith("itemid_imageid_list") and n.endswith(".pickle")]
    if len(text) != 1 or len(image) != 1:
        sys.exit(f"{folder}: expected one itemid_textid_list*.pickle and one itemid_imageid_list*.pickle")
    return text[0], image[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="official-format folder to copy")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="new folder (must not exist)")
    parser.add_argument("--bundle-order", choices=["text-image", "image-text"], default="text-image",
                        help="which modality the sample pickles' lists [1] and [2] hold (the official producer: text-image)")
    args = parser.parse_args()
    if os.path.exists(args.out):
        sys.exit(f"{args.out} exists; choose a new folder")

    text_name, image_name = code_list_files(args.data)
    text_codes, image_codes = load(os.path.join(args.data, text_name)), load(os.path.join(args.data, image_name))
    items = len(text_codes) - 1  # row 0 is the padding item
    if len(image_codes) != items + 1:
        sys.exit(f"{args.data}: the two code lists differ in length ({len(text_codes)}, {len(image_codes)})")
    donors = list(range(1, items + 1))
    random.Random(args.seed).shuffle(donors)
    donor = [0] + donors  # item x takes the codes of donor[x]
    new_text = [text_codes[donor[x]] for x in range(items + 1)]
    new_image = [image_codes[donor[x]] for x in range(items + 1)]
    by_modality = {"text": new_text, "image": new_image}
    first, second = ("text", "image") if args.bundle_order == "text-image" else ("image", "text")

    os.makedirs(args.out)
    for name in sorted(os.listdir(args.data)):
        source = os.path.join(args.data, name)
        if os.path.isfile(source) and name not in ("train.txt", "test.txt", text_name, image_name):
            shutil.copy2(source, os.path.join(args.out, name))
    dump(new_text, os.path.join(args.out, text_name))
    dump(new_image, os.path.join(args.out, image_name))
    for name in ("train.txt", "test.txt"):
        inputs, _, _, targets = load(os.path.join(args.data, name))
        bundles = lambda codes: [[bundle(codes[x]) for x in sequence] for sequence in inputs]
        dump([inputs, bundles(by_modality[first]), bundles(by_modality[second]), targets],
             os.path.join(args.out, name))
    moved = sum(1 for x in range(1, items + 1) if donor[x] != x)
    print(f"{args.out}: {items} items, {moved} with another item's codes (seed {args.seed})")


if __name__ == "__main__":
    main()
