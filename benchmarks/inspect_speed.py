"""Inspecting at scale (issue 26): the nearest neighbours of a point among 100,000 codes, the server's time.

`python -m benchmarks.inspect_speed [--json] [--codes N] [--dims D ...]`, or the `inspect` section of
`python -m benchmarks`. For each latent size: building the index once (`vae_core.inspection.LatentIndex`,
what the app caches per split) and then asking it for the k nearest neighbours of one code at a time,
as the Map page does on a click (its own code left out), with both distances; p50 and p95 over the
queries. Codes are standard-normal draws: exact search costs the same whatever the codes are. Also the
attribute directions of 100,000 labelled codes (10 classes), computed once per split. The target (issue
26): a point's neighbours in <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

TARGET_MS = 100.0


def neighbours(n: int = 100_000, dims: tuple[int, ...] = (16, 32), k: int = 12, queries: int = 50,
               seed: int = 0) -> dict:
    from vae_core.inspection import LatentIndex, attribute_directions

    rng = np.random.default_rng(seed)
    out: dict = {"neighbours_codes": n, "neighbours_k": k, "neighbours_queries": queries}
    for d in dims:
        mu = rng.standard_normal((n, d)).astype(np.float32)
        logvar = rng.uniform(-4, 0, (n, d)).astype(np.float32)
        started = time.perf_counter()
        index = LatentIndex(mu, logvar)
        out[f"neighbours_index_build_ms_d{d}"] = round(1000 * (time.perf_counter() - started), 2)
        for metric, name in (("euclidean", "euclidean"), ("symmetric-kl", "kl")):
            index.query(mu[0], k, logvar=logvar[0], metric=metric, exclude=[0])  # the KL's features, once
            times = []
            for i in rng.choice(n, queries, replace=False):
                started = time.perf_counter()
                index.query(mu[i], k, logvar=logvar[i], metric=metric, exclude=[int(i)])
                times.append(1000 * (time.perf_counter() - started))
            out[f"neighbours_{name}_ms_p50_d{d}"] = round(float(np.percentile(times, 50)), 3)
            out[f"neighbours_{name}_ms_p95_d{d}"] = round(float(np.percentile(times, 95)), 3)
        labels = rng.integers(0, 10, n)
        started = time.perf_counter()
        attribute_directions(mu, labels=labels, class_names=tuple(map(str, range(10))))
        out[f"directions_ms_d{d}"] = round(1000 * (time.perf_counter() - started), 2)
    out["neighbours_ms_p95"] = max(v for key, v in out.items() if key.startswith("neighbours_") and "_ms_p95_" in key)
    out["neighbours_target_ms"] = TARGET_MS
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.inspect_speed", description=__doc__.splitlines()[0])
    p.add_argument("--codes", type=int, default=100_000)
    p.add_argument("--dims", type=int, nargs="+", default=[16, 32])
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = neighbours(args.codes, tuple(args.dims), queries=args.queries)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:40s} {value}")


if __name__ == "__main__":
    main()
