"""Model quality on one CPU: the evaluator that `make quant-check` runs natively and under qemu.

    python -m training.cpu_eval windows --split test --n 512 --seed 0 --out build/quant/test-512.npz
    python -m training.cpu_eval eval build/quant/test-512.npz models/groove-vae [--label x86-vnni]

`windows` (needs the GMD parser) picks a fixed subset of a split's windows (numpy's default_rng(seed),
n windows without replacement, kept in split order) and stores grooves, patterns and their indices
in an .npz, once. `eval` needs numpy and onnxruntime only, so the same file runs on an emulated
Cortex-A72/A76 or x86 without VNNI: for each model directory it runs fp32 and int8 (one thread, like
the box), scores both with training.metrics.report (pooled hit F1, velocity and offset MSE on true
positives, copy-the-groove on the same hits) at the thresholds of model.json, and prints one JSON
object, with the CPU features onnxruntime can see.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from training.metrics import report
from training.onnx_model import OnnxModel, thresholds_for

AT_HWCAP, AT_HWCAP2 = 16, 26
ARM_HWCAP = {"asimd": 1 << 1, "asimddp": 1 << 20, "sve": 1 << 22}
ARM_HWCAP2 = {"i8mm": 1 << 13, "bf16": 1 << 14}


def cpu_features() -> dict:
    """What this (possibly emulated) CPU offers the integer kernels: x86 cpuid flags as numpy
    sees them, or the aarch64 HWCAP bits from the auxiliary vector (which qemu-user fills in)."""
    machine = platform.machine()
    out: dict = {"machine": machine}
    if machine in ("aarch64", "arm64"):
        try:
            raw = np.frombuffer(Path("/proc/self/auxv").read_bytes(), dtype=np.uint64).reshape(-1, 2)
            aux = {int(k): int(v) for k, v in raw}
            out["hwcap"] = sorted([n for n, b in ARM_HWCAP.items() if aux.get(AT_HWCAP, 0) & b]
                                  + [n for n, b in ARM_HWCAP2.items() if aux.get(AT_HWCAP2, 0) & b])
        except OSError as error:
            out["hwcap"] = f"unreadable: {error}"
    else:
        try:
            from numpy._core._multiarray_umath import __cpu_features__ as feats
        except ImportError:  # numpy < 2
            from numpy.core._multiarray_umath import __cpu_features__ as feats  # type: ignore[no-redef]
        wanted = ("AVX2", "FMA3", "AVX512F", "AVX512_SKX", "AVX512_CLX", "AVX512_ICL", "AVX512_SPR")
        out["cpuid"] = [k for k in wanted if feats.get(k)]
        out["vnni"] = bool(feats.get("AVX512_CLX") or feats.get("AVX512_ICL"))  # CLX = AVX512-VNNI
    return out


def load_windows(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def evaluate(windows: dict[str, np.ndarray], model_dir: Path, precisions: tuple[str, ...] = ("fp32", "int8"),
             threads: int = 1, batch: int = 1) -> dict:
    """fp32 and int8 of one model directory on the stored windows (numpy + onnxruntime only).

    One groove per run by default, as the box runs it: dynamic int8 quantises activations with
    one scale per tensor, so a batch's loudest window would set the scale for all of them."""
    card = json.loads((model_dir / "model.json").read_text())
    grooves, patterns = windows["grooves"].astype(np.float32), windows["patterns"].astype(np.float32)
    thresholds = thresholds_for(card, grooves)
    result: dict = {"model": str(model_dir), "windows": int(len(grooves))}
    for precision in precisions:
        t0 = time.perf_counter()
        probs, vel, off = OnnxModel(model_dir, precision, threads=threads).predict(grooves, batch=batch)
        r = report(probs, vel, off, patterns, grooves, thresholds)
        result[precision] = {
            "f1": r["hit"]["f1"], "precision": r["hit"]["precision"], "recall": r["hit"]["recall"],
            "velocity_mse_tp": r["velocity_mse_tp"], "offset_mse_tp": r["offset_mse_tp"],
            "copy_velocity_mse_tp": r["baselines"]["copy_groove"]["velocity_mse_tp"],
            "copy_offset_mse_tp": r["baselines"]["copy_groove"]["offset_mse_tp"],
            "seconds": round(time.perf_counter() - t0, 2),
        }
    return result


def export_windows(split: str, n: int, seed: int, out: Path, gmd: str | None = None) -> Path:
    """A fixed subset of a split's windows → .npz (needs the GMD parser: training.dataset)."""
    from training import dataset as ds  # mido, only here: the emulated runs never call this

    data = ds.load_split(split, gmd)
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(data), size=min(n, len(data)), replace=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, grooves=data.inputs[index], patterns=data.patterns[index], index=index,
                        meta=json.dumps({"split": split, "seed": seed, "n": int(len(index)),
                                         "of": int(len(data)), "rule": "np.random.default_rng(seed).choice("
                                         "len(split), n, replace=False), sorted"}))
    tmp.replace(out)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("windows", help="store a fixed subset of a split's windows (needs GMD)")
    w.add_argument("--split", default="test")
    w.add_argument("--n", type=int, default=512)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--gmd-dir", default=None)
    w.add_argument("--out", type=Path, required=True)
    e = sub.add_parser("eval", help="fp32 and int8 of model directories on stored windows")
    e.add_argument("windows", type=Path)
    e.add_argument("model_dirs", type=Path, nargs="+")
    e.add_argument("--label", default="")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--batch", type=int, default=1, help="grooves per run (the box: 1)")
    e.add_argument("--precisions", default="fp32,int8", help="which graphs to run (default both)")
    args = p.parse_args(argv)
    if args.cmd == "windows":
        print(export_windows(args.split, args.n, args.seed, args.out, args.gmd_dir))
        return
    windows = load_windows(args.windows)
    meta = json.loads(str(windows.pop("meta"))) if "meta" in windows else {}
    t0 = time.perf_counter()
    out = {"label": args.label, "cpu": cpu_features(), "windows": meta,
           "onnxruntime": __import__("onnxruntime").__version__, "numpy": np.__version__,
           "python": platform.python_version(), "batch": args.batch, "threads": args.threads,
           "models": [evaluate(windows, d, tuple(args.precisions.split(",")), args.threads, args.batch) for d in args.model_dirs]}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
