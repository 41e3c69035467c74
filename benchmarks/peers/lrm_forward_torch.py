#!/usr/bin/python3
"""PyTorch peer for LrmNative's image -> triplane forward on the CPU (issue 3 benchmark).

Runs the same modules as the golden reference (tests/golden/make_model_golden.py: DINOv2 encoder with
registers, camera embedder, ModLN decoder, upsampler), in float32 under torch.no_grad(), with random weights
of the OpenLRM config given, on the same number of threads as our run, and prints one JSON line:
  {"peer": "pytorch", "torch": "1.13.1", "config": "openlrm-small", "threads": 2, "image_size": 224,
   "seconds": [...], "best_seconds": ..., "median_seconds": ...}

Usage: /usr/bin/python3 benchmarks/peers/lrm_forward_torch.py configs/openlrm-small.json [--threads 2] [--repeats 3]
Needs Debian's python3-torch (1.13).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "golden"))
import make_model_golden as ref  # noqa: E402  (the reference modules, dtype-agnostic)

ENCODERS = {"dinov2_vits14_reg": (384, 12, 6), "dinov2_vitb14_reg": (768, 12, 12)}
IMAGE_SIZE_BY_DIM = {512: 224, 768: 336, 1024: 448}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with open(args.config) as f:
        cfg = json.load(f)
    width, depth, heads = ENCODERS[cfg["encoder_model_name"]]
    cfg.setdefault("encoder_depth", depth)
    cfg.setdefault("encoder_heads", heads)
    cfg.setdefault("encoder_image_size", IMAGE_SIZE_BY_DIM[cfg["transformer_dim"]])
    torch.set_num_threads(args.threads)
    weights = {k: v.float() for k, v in ref.make_weights(cfg, variant="bench").items()}
    size = cfg["encoder_image_size"]
    image = torch.rand(1, 3, size, size, generator=ref.gen("bench/image"))
    camera = ref.canonical_source_camera().float().reshape(1, -1)
    times = []
    with torch.no_grad():
        ref.forward_planes(weights, image, camera, cfg)  # warm-up
        for _ in range(args.repeats):
            start = time.perf_counter()
            ref.forward_planes(weights, image, camera, cfg)
            times.append(time.perf_counter() - start)
    name = os.path.splitext(os.path.basename(args.config))[0]
    print(json.dumps({"peer": "pytorch", "torch": torch.__version__, "config": name, "threads": args.threads,
                      "image_size": size, "seconds": times, "best_seconds": min(times),
                      "median_seconds": statistics.median(times)}))


if __name__ == "__main__":
    main()
