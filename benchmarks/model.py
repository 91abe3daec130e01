"""Model benchmark: encoder + decoder latency for one groove on one thread, int8 and fp32, and
the size of the model on disk.

    python -m benchmarks.model [model_dir] [--runs 2000]

Times one encoder run plus one decoder run (a generation's model work over one hand) through
onnxruntime with intra_op_num_threads = 1, on 64 synthetic grooves in turn (latency does not
depend on the values). With a register encoder (model.json's inputs.register) it times that one
instead; the size counts every graph. Then a whole generation, ``Generator.generate``, over a
groove of one hand and of two (with a register encoder, two hands run it and the encoder: one
encoder, one register encoder and two decoder runs, and the encoder's pattern; docs/ARCHITECTURE.md,
"The left hand").
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from appliance.core.model_files import graph_path, has_register, open_session

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "models" / "groove-vae"


def _grooves(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = np.zeros((n, 32, 4), np.float32)
    g[..., 0] = rng.random((n, 32)) < 0.5
    g[..., 1] = g[..., 0] * rng.uniform(0.2, 1.0, (n, 32))
    g[..., 2] = g[..., 0] * rng.uniform(-0.3, 0.3, (n, 32))
    g[..., 3] = g[..., 0] * np.where(rng.random((n, 32)) < 0.4, 1.0, -1.0)   # the register (+1 low, −1 high)
    return g


def measure(model_dir: Path, precision: str, runs: int, warmup: int = 100) -> dict:
    register = has_register(model_dir)
    parts = ("encoder", "decoder") + (("register",) if register else ())
    enc = open_session(graph_path(model_dir, "register" if register else "encoder", precision))
    dec = open_session(graph_path(model_dir, "decoder", precision))
    grooves = _grooves(64)[..., :enc.get_inputs()[0].shape[-1]]
    times = []
    for i in range(warmup + runs):
        g = grooves[i % len(grooves)][None]
        t0 = time.perf_counter()
        mu, _ = enc.run(["mu", "logvar"], {"groove": g})
        dec.run(["hits", "velocities", "offsets"], {"z": mu})
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1e3
    size = sum(graph_path(model_dir, p, precision).stat().st_size for p in parts)
    return {"precision": precision, "runs": runs, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()), "bytes": int(size)}


def generation(model_dir: Path, runs: int, warmup: int = 20) -> dict[str, dict]:
    """Generator.generate (int8, the box's defaults) over a groove of one hand and over the same
    steps with a left hand (two-handed: with a register encoder, its reading, the encoder's
    level and backbone): p50/p99 ms each, one groove per run, as the engine asks."""
    from appliance.core.generator import Controls, Generator
    from appliance.core.groove import Groove
    generator = Generator(model_dir, seed=0)
    grooves = _grooves(16, seed=1)
    out = {}
    for name, two in (("one hand", False), ("two hands", True)):
        times = []
        for i in range(warmup + runs):
            g = grooves[i % len(grooves)]
            groove = Groove(g[:, :3], g[:, 3] > 0) if two else Groove(g[:, :3])
            t0 = time.perf_counter()
            generator.generate(groove, Controls(), generator.new_eps() if i % 2 else None)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        ms = np.asarray(times) * 1e3
        heard = all(Groove(g[:, :3], g[:, 3] > 0).two_handed for g in grooves) if two else False
        out[name] = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
                     "two_handed": heard}
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=DEFAULT_MODEL)
    p.add_argument("--runs", type=int, default=2000)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args(argv)
    results = [measure(args.model_dir, precision, args.runs) for precision in ("int8", "fp32")]
    if args.json:
        print(json.dumps(results))
        return
    name = json.loads((args.model_dir / "model.json").read_text()).get("name", args.model_dir.name)
    print(f"model {name} ({args.model_dir}): encoder + decoder, one groove, one thread, {args.runs} runs")
    print(f"{'precision':<10} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'size on disk':>14}")
    for r in results:
        print(f"{r['precision']:<10} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} {r['mean_ms']:8.3f} "
              f"{r['bytes'] / 1e6:11.2f} MB")
    int8, fp32 = results
    print(f"int8/fp32: p50 {int8['p50_ms'] / fp32['p50_ms']:.2f}x, size {int8['bytes'] / fp32['bytes']:.2f}x")
    runs = max(20, args.runs // 4)
    made = generation(args.model_dir, runs)
    print(f"a whole generation (Generator.generate, int8, one groove, {runs} runs each):")
    for name, r in made.items():
        print(f"  {name:<10} p50 {r['p50_ms']:7.3f} ms  p99 {r['p99_ms']:7.3f} ms  (two-handed: {r['two_handed']})")
    one, two = made["one hand"], made["two hands"]
    print(f"two hands / one hand: p50 {two['p50_ms'] / one['p50_ms']:.2f}x, p99 {two['p99_ms'] / one['p99_ms']:.2f}x")


if __name__ == "__main__":
    main()
