"""Time and peak memory of FID for N generated images: Inception features + Fréchet distance.

    python benchmarks/fid_time.py [--num 50000] [--resolution 256] [--weights PATH]

Images are random uint8 images made on the device batch by batch (what a generator hands to
the metric after quantization), so the measurement is the metric's own cost: resizing to
299, the Inception forward, the float64 statistics, and the Fréchet distance against
reference statistics (those of the same number of other random images, computed first and
not timed, as cached dataset statistics would be). Without ``--weights`` the Inception
network has random weights: the time and memory are the same as with the real weights, the
FID value is meaningless and reported as such.

The Fréchet distance is timed both ways (``sqrtm``, the standard tools' computation, and
the equivalent symmetric eigenvalue form ``eigh``). Each run writes one JSON document to
``benchmarks/results/fid_time-<device>.json`` (a row per precision mode: full float32,
and TF32 on CUDA) with the device, versions and commit. Reference: StyleGAN2-ADA reports
13 minutes for fid50k_full on one V100 at 1024 px.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from gankern.metrics.features import extract_features
from gankern.metrics.frechet import frechet_distance
from gankern.metrics.images import SamplerSource
from gankern.metrics.inception import FIDInceptionV3, load_inception

RESULTS = Path(__file__).resolve().parent / "results"


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def _random_images(num_channels: int, resolution: int, device: torch.device, seed: int):
    gen = torch.Generator(device=device).manual_seed(seed)

    def sampler(n: int) -> torch.Tensor:
        return torch.randint(0, 256, (n, num_channels, resolution, resolution),
                             dtype=torch.uint8, device=device, generator=gen)

    sampler.__name__ = f"random_uint8_{resolution}px"
    return SamplerSource(sampler)


def _he_initialized() -> FIDInceptionV3:
    """Random weights that keep activations O(1), so features (and covariances) are not
    degenerate and the Fréchet distance costs what it costs with real features."""
    model = FIDInceptionV3()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("conv.weight"):
                t.copy_(torch.randn(t.shape, generator=gen) * (2 / t[0].numel()) ** 0.5)
    return model.requires_grad_(False)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model, *, num: int, resolution: int, batch_size: int, allow_tf32: bool,
            reference) -> dict:
    device = model.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # Warm-up batch (cuDNN autotuning, lazy initialization) outside the timing.
    extract_features(_random_images(3, resolution, device, 99), model, num=batch_size,
                     batch_size=batch_size, cache=False, allow_tf32=allow_tf32)
    _synchronize(device)
    start = time.perf_counter()
    fake = extract_features(_random_images(3, resolution, device, 1), model, num=num,
                            batch_size=batch_size, cache=False, allow_tf32=allow_tf32)
    _synchronize(device)
    extracted = time.perf_counter() - start
    frechet = {}
    for method in ("sqrtm", "eigh"):  # the standard computation, and the faster equivalent
        t0 = time.perf_counter()
        fid = frechet_distance(reference.mean, reference.cov, fake.stats.mean, fake.stats.cov,
                               method=method)
        frechet[method] = (time.perf_counter() - t0, fid)
    row = {
        "precision": "tf32" if allow_tf32 else "fp32",
        "num_images": num,
        "resolution": resolution,
        "batch_size": batch_size,
        "seconds_features": round(extracted, 3),
        "seconds_frechet_sqrtm": round(frechet["sqrtm"][0], 3),
        "seconds_frechet_eigh": round(frechet["eigh"][0], 3),
        "seconds_total_sqrtm": round(extracted + frechet["sqrtm"][0], 3),
        "seconds_total_eigh": round(extracted + frechet["eigh"][0], 3),
        "images_per_second": round(num / extracted, 1),
        "fid_sqrtm": frechet["sqrtm"][1],
        "fid_eigh": frechet["eigh"][1],
    }
    if device.type == "cuda":
        row["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 3)
    # Peak resident memory of the process (kilobytes on Linux).
    row["peak_host_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=None,
                        help="generated images (default: 50000 on CUDA, 16 on the CPU)")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size (default: 500 on CUDA, 8 on the CPU)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--weights", default=None, help="pt_inception-2015-12-05 weights")
    parser.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/)")
    args = parser.parse_args(argv)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    num = args.num or (50_000 if device.type == "cuda" else 16)
    batch = args.batch or (500 if device.type == "cuda" else 8)
    if args.weights:
        model, weights = load_inception(args.weights, device), "pt_inception-2015-12-05"
    else:
        model, weights = _he_initialized().to(device), "random"
    reference = extract_features(_random_images(3, args.resolution, device, 0), model,
                                 num=min(num, 4096), batch_size=batch, cache=False).stats
    modes = [False, True] if device.type == "cuda" else [False]
    rows = []
    for allow_tf32 in modes:
        row = measure(model, num=num, resolution=args.resolution, batch_size=batch,
                      allow_tf32=allow_tf32, reference=reference)
        rows.append(row)
        print(json.dumps(row), flush=True)
    document = {
        "benchmark": "fid_time",
        "device": _device_name(device),
        "weights": weights if weights != "random" else "random (timing only; FID meaningless)",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "commit": _commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "reference": "StyleGAN2-ADA: fid50k_full in 13 min on one V100 at 1024 px",
        "rows": rows,
    }
    out = Path(args.out) if args.out else RESULTS / f"fid_time-{device.type}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
