"""An estimate of one generation's time (encoder + decoder, one groove, one thread; with a register
encoder, the costlier of the two encoders, as one generation runs one of them) on a
Raspberry Pi 4 (Cortex-A72) and a Raspberry Pi 5 (Cortex-A76).

    python -m benchmarks.pi [model_dir]

There is no Pi here, so this is an estimate from counted work and published core figures, not a
measurement; treat it as good to a factor of about two:
- Work: the multiply-accumulates of every MatMul/Gemm, counted from the ONNX graphs for one groove
  (32 steps; the latent projections run on one row). Elementwise work (LayerNorm, softmax, GELU,
  quantise/dequantise) is not counted: it is inside the efficiency range below.
- Compute: MACs / (peak MACs per cycle × clock × efficiency). Peaks from the cores' NEON width:
  fp32 FMLA on two 128-bit pipes = 8 MACs/cycle on both cores; int8 on the A72 (no dot product:
  widening multiply-accumulate) 8–16 MACs/cycle; int8 on the A76 (SDOT/UDOT on two pipes)
  32 MACs/cycle. Clocks: Pi 4 1.5 GHz (1.8 GHz on boards since 2020), Pi 5 2.4 GHz. Efficiency of
  onnxruntime's kernels on these small matrices (32 × 128…384, one row for the latent
  projections): assumed 0.25–0.6.
- Memory: the weights that do not fit the last-level cache (Pi 4: 1 MB L2; Pi 5: 512 kB L2 +
  2 MB L3) stream from DRAM once per generation at an assumed 2–4 GB/s (Pi 4) / 4–8 GB/s (Pi 5).
Low end: the fast end of every assumption, compute and memory overlapped. High end: the slow end,
compute and memory added, so the range spans every assumption at once (up to ~6x wide). Even its
high end is what matters for the box: a fraction of one bar (1.2 s at 200 BPM).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from appliance.core.model_files import graph_path, has_register

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO / "models" / "groove-vae"
STEPS = 32
EFFICIENCY = (0.25, 0.6)


@dataclass(frozen=True)
class Board:
    name: str
    core: str
    ghz: tuple[float, float]           #: (slowest, fastest) clock the board ships with
    macs_per_cycle: dict               #: precision → (low, high) peak MACs per cycle, one core
    dram_gbs: tuple[float, float]      #: assumed sustained read bandwidth (low, high), GB/s
    cache_bytes: int                   #: last-level cache one core can use


BOARDS = (
    Board("Raspberry Pi 4", "Cortex-A72", (1.5, 1.8), {"fp32": (8, 8), "int8": (8, 16)}, (2.0, 4.0), 1 << 20),
    Board("Raspberry Pi 5", "Cortex-A76", (2.4, 2.4), {"fp32": (8, 8), "int8": (32, 32)}, (4.0, 8.0),
          (512 << 10) + (2 << 20)),
)


def count_macs(path: Path, d_model: int) -> int:
    """Multiply-accumulates of one run with one groove: MatMul/Gemm against weights, and attention."""
    import onnx  # the train extra (make bench uses the dev venv)

    model = onnx.load(str(path))
    weights = {i.name: tuple(i.dims) for i in model.graph.initializer}
    macs = 0
    for node in model.graph.node:
        if node.op_type not in ("MatMul", "Gemm", "MatMulInteger", "DynamicQuantizeMatMul"):
            continue
        w = weights.get(node.input[1])
        if w is None:  # activation × activation: attention scores or mixing, all heads together
            macs += STEPS * STEPS * d_model
            continue
        transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
        k, n = (w[1], w[0]) if transposed else (w[0], w[1])
        rows = 1 if ("to_latent" in node.name or "from_latent" in node.name) else STEPS
        macs += rows * k * n
    return macs


def estimate(board: Board, precision: str, macs: int, weight_bytes: int) -> tuple[float, float]:
    """(low, high) milliseconds for one generation."""
    peak_lo, peak_hi = board.macs_per_cycle[precision]
    fast = macs / (peak_hi * board.ghz[1] * 1e9 * EFFICIENCY[1])
    slow = macs / (peak_lo * board.ghz[0] * 1e9 * EFFICIENCY[0])
    streamed = weight_bytes if weight_bytes > board.cache_bytes else 0
    return max(fast, streamed / (board.dram_gbs[1] * 1e9)) * 1e3, (slow + streamed / (board.dram_gbs[0] * 1e9)) * 1e3


def generation_parts(model_dir: Path, d_model: int) -> tuple[str, str]:
    """The graphs one generation runs, at their costliest: an encoder (the register encoder when the
    model has one and it does more work) and the decoder."""
    parts = ("encoder", "register") if has_register(model_dir) else ("encoder",)
    missing = [path for path in (graph_path(model_dir, part, "fp32") for part in parts) if not path.is_file()]
    if missing:
        raise SystemExit(f"benchmarks.pi: {missing[0]} is missing; model.json names it: re-export the model")
    return max(parts, key=lambda part: count_macs(graph_path(model_dir, part, "fp32"), d_model)), "decoder"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=DEFAULT_MODEL)
    args = p.parse_args(argv)
    card = json.loads((args.model_dir / "model.json").read_text())
    d_model = int(card["architecture"]["d_model"])
    parts = generation_parts(args.model_dir, d_model)
    macs = sum(count_macs(graph_path(args.model_dir, part, "fp32"), d_model) for part in parts)
    print(f"ESTIMATE, not measured on a Pi: {macs / 1e6:.1f} M multiply-accumulates per generation (counted from "
          f"the graphs) / (peak NEON MACs per cycle x clock x efficiency {EFFICIENCY[0]:g}-{EFFICIENCY[1]:g}) "
          "+ weights streamed from DRAM; the range spans the assumptions (benchmarks/pi.py says which)")
    print(f"{'board':<16} {'precision':<9} {'estimate ms':>14}  assumptions")
    worst = 0.0
    for board in BOARDS:
        for precision in ("int8", "fp32"):
            size = sum(graph_path(args.model_dir, part, precision).stat().st_size for part in parts)
            lo, hi = estimate(board, precision, macs, size)
            peak = board.macs_per_cycle[precision]
            print(f"{board.name:<16} {precision:<9} {lo:6.2f} – {hi:5.2f}  {board.core} {board.ghz[0]:g}–{board.ghz[1]:g} GHz, "
                  f"{peak[0]:g}–{peak[1]:g} MACs/cycle, weights {size / 1e6:.2f} MB vs cache {board.cache_bytes / 1e6:.1f} MB, "
                  f"DRAM {board.dram_gbs[0]:g}–{board.dram_gbs[1]:g} GB/s")
            worst = max(worst, hi)
    print(f"slowest end of every estimate: {worst:.1f} ms = {worst / 1200 * 100:.1f} % of one bar at 200 BPM (1.2 s)")


if __name__ == "__main__":
    main()
