"""make quant-check: does the int8 model hold on every CPU the box runs on? (issue 9)

    python -m training.quant_check [models/groove-vae] [--card] [--split test --n 512 --seed 0]

Runs the same evaluator (training/cpu_eval.py: numpy + onnxruntime only) on four CPUs:
- x86-64 with AVX-512 VNNI: this machine, natively (the row says so if this CPU has no VNNI);
- x86-64 without VNNI: `qemu-x86_64-static -cpu Haswell` (AVX2 + FMA, no AVX-512) running this venv's Python;
- Cortex-A72 (Raspberry Pi 4, no dot product) and Cortex-A76 (Raspberry Pi 5, dot product):
  `qemu-aarch64-static -cpu cortex-a72|cortex-a76` running Debian bookworm's arm64 python3.11
  (unpacked with `mmdebstrap --variant=extract`, no maintainer scripts) with the PyPI cp311 aarch64
  wheels of the pinned numpy and onnxruntime.
onnxruntime picks its integer kernels from what the (emulated) CPU reports (cpuid; HWCAP on aarch64),
so each run exercises that CPU's kernels; the JSON of each run records the features it saw.

Windows: a fixed subset of the split (default: 512 test windows drawn with numpy default_rng(0)),
stored once in build/quant/ so emulated runs need neither torch nor the MIDI parser. One groove per
run, one thread, as the box runs. Emulator setup and per-CPU results are cached under build/quant/
(results keyed by the model files, the windows and the evaluator), so a second run only repeats what
changed. Prints a markdown table, writes out/quant-check.md and .json, with --card stores the figures
in model.json under metrics.cpus. Exits 1 if any CPU misses the targets: int8 within 0.01 F1 of fp32,
velocity and offset MSE on true positives below copy-the-groove (on the same hits).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.core.model_files import REGISTER_PATH, has_register

from training.cpu_eval import cpu_features

log = logging.getLogger("training.quant_check")

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build" / "quant"
OUT = REPO / "out"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
ARM_PACKAGES = "python3.11-minimal,libpython3.11-stdlib,libstdc++6,libgcc-s1"
F1_TOLERANCE = 0.01


@dataclass(frozen=True)
class Cpu:
    key: str
    name: str
    how: str


CPUS = (
    Cpu("x86-vnni", "x86-64 with AVX-512 VNNI", "native"),
    Cpu("x86-haswell", "x86-64 without VNNI (Haswell: AVX2, FMA)", "qemu-x86_64-static -cpu Haswell"),
    Cpu("cortex-a72", "Cortex-A72 (Raspberry Pi 4)", "qemu-aarch64-static -cpu cortex-a72"),
    Cpu("cortex-a76", "Cortex-A76 (Raspberry Pi 5)", "qemu-aarch64-static -cpu cortex-a76"),
)


def _run(cmd: list[str], **kw) -> None:
    log.info("$ %s", " ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


def ensure_tools() -> None:
    """qemu-user-static and mmdebstrap from Debian (apt-install.sh waits for nothing it has)."""
    _run(["bash", str(REPO / "scripts" / "apt-install.sh"), "qemu-user-static:qemu-aarch64-static",
          "mmdebstrap:mmdebstrap"])
    for tool in ("qemu-aarch64-static", "qemu-x86_64-static", "mmdebstrap"):
        if shutil.which(tool) is None:
            raise SystemExit(f"quant-check: {tool} is missing; install qemu-user-static and mmdebstrap (Debian)")


def ensure_windows(split: str, n: int, seed: int) -> Path:
    path = BUILD / f"{split}-{n}-seed{seed}-register-signed.npz"   # (grooves with their register, +1/−1: 4 channels)
    if not path.exists():
        from training.cpu_eval import export_windows
        export_windows(split, n, seed, path)
    return path


def ensure_arm64_python() -> Path:
    """Debian bookworm's arm64 python3.11, unpacked (no maintainer scripts run, nothing emulated)."""
    root = BUILD / "arm64-root"
    if not (root / "usr" / "bin" / "python3.11").exists():
        tmp = BUILD / "arm64-root.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        _run(["mmdebstrap", "--variant=extract", "--arch=arm64", f"--include={ARM_PACKAGES}", "bookworm",
              str(tmp), DEBIAN_MIRROR])
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    return root


def ensure_arm64_wheels() -> Path:
    """The pinned numpy and onnxruntime as PyPI cp311 aarch64 wheels, unpacked into one folder."""
    import onnxruntime
    versions = f"numpy=={np.__version__}", f"onnxruntime=={onnxruntime.__version__}"
    site = BUILD / ("aarch64-site-" + "-".join(v.replace("==", "") for v in versions))
    if not site.exists():
        wheels = BUILD / "wheels-aarch64"
        _run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps",
              "--platform", "manylinux2014_aarch64", "--platform", "manylinux_2_28_aarch64",
              "--python-version", "3.11", "--implementation", "cp", "-d", str(wheels), *versions])
        tmp = site.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        for v in versions:
            name, version = v.split("==")
            for wheel in wheels.glob(f"{name}-{version}-cp311-*aarch64*.whl"):
                with zipfile.ZipFile(wheel) as z:
                    z.extractall(tmp)
        for lib in tmp.rglob("*.so*"):
            lib.chmod(0o755)
        tmp.rename(site)
    return site


def command(cpu: Cpu, windows: Path, model_dir: Path, precisions: list[str]) -> tuple[list[str], dict[str, str]]:
    """The evaluator's command line and environment for one CPU."""
    args = ["-m", "training.cpu_eval", "eval", str(windows), str(model_dir), "--label", cpu.key,
            "--precisions", ",".join(precisions)]
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/tmp"}
    if cpu.key == "x86-vnni":
        return [sys.executable, *args], {**env, "PYTHONPATH": str(REPO)}
    if cpu.key == "x86-haswell":
        return ["qemu-x86_64-static", "-cpu", "Haswell", sys.executable, *args], {**env, "PYTHONPATH": str(REPO)}
    root, site = ensure_arm64_python(), ensure_arm64_wheels()
    return (["qemu-aarch64-static", "-cpu", cpu.key, "-L", str(root), str(root / "usr/bin/python3.11"), *args],
            {**env, "PYTHONPATH": f"{REPO}:{site}"})


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def result_key(cpu: Cpu, windows: Path, model_dir: Path, precision: str) -> str:
    """What one CPU's figures for one precision depend on: that precision's graphs, the thresholds,
    the windows' arrays, and the code that runs and scores them (onnx_model.py, metrics.py)."""
    suffix = ".int8.onnx" if precision == "int8" else ".onnx"
    parts = ("encoder", "decoder") + (("register",) if has_register(model_dir) else ())
    graphs = [(model_dir / f"{part}{suffix}").read_bytes() for part in parts]
    card = json.loads((model_dir / "model.json").read_text())
    thresholds = json.dumps(card["thresholds"] if REGISTER_PATH not in card   # (a card without one: as before)
                            else [card["thresholds"], card[REGISTER_PATH].get("thresholds")]).encode()
    with np.load(windows, allow_pickle=False) as z:
        arrays = [z["grooves"].tobytes(), z["patterns"].tobytes()]
    code = [(REPO / "training" / f).read_bytes() for f in ("metrics.py", "onnx_model.py")]
    return f"{cpu.key}-{precision}-{_digest(graphs + [thresholds] + arrays + code)}"


def run_precision(cpu: Cpu, windows: Path, model_dir: Path, precision: str, fresh: bool = False) -> dict:
    """One CPU's figures for one precision, from the cache when nothing they depend on changed."""
    cache = BUILD / "results" / f"{result_key(cpu, windows, model_dir, precision)}.json"
    if cache.exists() and not fresh:
        return json.loads(cache.read_text())
    cmd, env = command(cpu, windows, model_dir, [precision])
    logs = BUILD / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_file = logs / f"{cpu.key}-{precision}.log"
    with open(log_file, "w") as err:
        proc = subprocess.run(["nice", "-n", "10", *cmd], env=env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=err, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{cpu.key} {precision}: the evaluator failed (exit {proc.returncode}); see {log_file}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["how"] = cpu.how
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result, indent=1))
    return result


def merge(fp32: dict, int8: dict, cpu: Cpu) -> dict:
    """One CPU's fp32 and int8 runs as one result."""
    if fp32["cpu"] != int8["cpu"]:
        raise RuntimeError(f"{cpu.key}: the fp32 and int8 runs saw different CPU features")
    return {**int8, "models": [{**int8["models"][0], "fp32": fp32["models"][0]["fp32"]}],
            "seconds": fp32.get("seconds", 0) + int8.get("seconds", 0)}


def verdict(model: dict) -> list[str]:
    """What misses the targets on one CPU (empty: it holds)."""
    fp, q = model["fp32"], model["int8"]
    problems = []
    if abs(q["f1"] - fp["f1"]) > F1_TOLERANCE:
        problems.append(f"int8 F1 {q['f1']:.4f} vs fp32 {fp['f1']:.4f}")
    for precision, m in (("fp32", fp), ("int8", q)):
        for what in ("velocity", "offset"):
            if not m[f"{what}_mse_tp"] < m[f"copy_{what}_mse_tp"]:
                problems.append(f"{precision} {what} MSE {m[f'{what}_mse_tp']:.5f} ≥ copy-the-groove "
                                f"{m[f'copy_{what}_mse_tp']:.5f}")
    return problems


def table(results: list[tuple[Cpu, dict]]) -> str:
    first = results[0][1]
    w = first["windows"]
    lines = [
        f"{w.get('n')} of {w.get('of')} {w.get('split')} windows ({w.get('rule')}, seed {w.get('seed')}); one groove "
        f"per run, one thread; onnxruntime {first['onnxruntime']}, numpy {first['numpy']}. "
        "Copy-the-groove: the groove's velocity and offset on the same hits (int8's hits for int8).",
        "",
        "| CPU | how | features seen | F1 fp32 | F1 int8 | ΔF1 | velocity MSE fp32 / int8 / copy | "
        "offset MSE fp32 / int8 / copy | holds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cpu, r in results:
        m = r["models"][0]
        fp, q = m["fp32"], m["int8"]
        feats = r["cpu"].get("hwcap") or r["cpu"].get("cpuid")
        feats = ", ".join(feats) if isinstance(feats, list) else str(feats)
        problems = verdict(m)
        borrowed = f" (fp32: {r['fp32_from']}'s run)" if r.get("fp32_from") else ""
        lines.append(
            f"| {cpu.name}{borrowed} | {cpu.how} | {feats} | {fp['f1']:.4f} | {q['f1']:.4f} | {q['f1'] - fp['f1']:+.4f} | "
            f"{fp['velocity_mse_tp']:.5f} / {q['velocity_mse_tp']:.5f} / {q['copy_velocity_mse_tp']:.5f} | "
            f"{fp['offset_mse_tp']:.5f} / {q['offset_mse_tp']:.5f} / {q['copy_offset_mse_tp']:.5f} | "
            f"{'yes' if not problems else 'NO: ' + '; '.join(problems)} |")
    return "\n".join(lines)


def card_entry(results: list[tuple[Cpu, dict]]) -> dict:
    first = results[0][1]
    return {
        "command": "make quant-check",
        "windows": first["windows"],
        "recipe": json.loads((Path(first["models"][0]["model"]) / "model.json").read_text()).get("quantisation"),
        "onnxruntime": first["onnxruntime"],
        "cpus": {cpu.key: {"name": cpu.name, "how": cpu.how, "features": r["cpu"],
                           "fp32": r["models"][0]["fp32"], "int8": r["models"][0]["int8"],
                           "fp32_from": r.get("fp32_from", cpu.key),
                           "holds": not verdict(r["models"][0])} for cpu, r in results},
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, nargs="?", default=REPO / "models" / "groove-vae")
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpus", default=",".join(c.key for c in CPUS), help="comma-separated subset of the four")
    p.add_argument("--jobs", type=int, default=4, help="evaluator runs at once (one per CPU and precision)")
    p.add_argument("--fresh", action="store_true", help="ignore cached results")
    p.add_argument("--fp32-from", action="append", default=[], metavar="CPU=OTHER",
                   help="borrow OTHER's fp32 figures for CPU (said in the table and the card); for when an "
                        "emulated fp32 run cannot be afforded")
    p.add_argument("--card", action="store_true", help="store the figures in model.json (metrics.cpus)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    model_dir = args.model_dir.resolve()
    wanted = [c for c in CPUS if c.key in args.cpus.split(",")]
    if not wanted:
        raise SystemExit(f"quant-check: no known CPU in {args.cpus!r} (known: {', '.join(c.key for c in CPUS)})")
    host = cpu_features()
    if any(c.key == "x86-vnni" for c in wanted) and not host.get("vnni"):
        log.warning("this machine's CPU has no AVX-512 VNNI (%s): the 'x86-vnni' row runs natively without it",
                    host)
    ensure_tools()
    windows = ensure_windows(args.split, args.n, args.seed)
    if any(c.key.startswith("cortex") for c in wanted):
        ensure_arm64_python()
        ensure_arm64_wheels()
    stand_in = dict(pair.split("=") for pair in args.fp32_from)  # cpu → cpu whose fp32 run it borrows
    by_key = {c.key: c for c in CPUS}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        runs = {(by_key[stand_in.get(c.key, c.key)] if p == "fp32" else c, p) for c in wanted for p in ("fp32", "int8")}
        started = {(c, p): pool.submit(run_precision, c, windows, model_dir, p, args.fresh) for c, p in runs}
        futures = {(c, p): started[by_key[stand_in.get(c.key, c.key)] if p == "fp32" else c, p]
                   for c in wanted for p in ("fp32", "int8")}
        results = []
        for c in wanted:
            fp32 = futures[c, "fp32"].result()
            if c.key in stand_in:
                fp32 = {**fp32, "cpu": futures[c, "int8"].result()["cpu"]}
            merged = merge(fp32, futures[c, "int8"].result(), c)
            if c.key in stand_in:
                merged["fp32_from"] = stand_in[c.key]
            results.append((c, merged))
            log.info("%s done (%.0f s)", c.key, results[-1][1]["seconds"])
    text = table(results)
    OUT.mkdir(exist_ok=True)
    (OUT / "quant-check.md").write_text(f"model {model_dir}\n\n{text}\n")
    (OUT / "quant-check.json").write_text(json.dumps([r for _, r in results], indent=1) + "\n")
    if args.card:
        path = model_dir / "model.json"
        card = json.loads(path.read_text())
        card.setdefault("metrics", {})["cpus"] = card_entry(results)
        path.write_text(json.dumps(card, indent=2) + "\n")
        log.info("wrote metrics.cpus into %s", path)
    print(text)
    failed = [c.key for c, r in results if verdict(r["models"][0])]
    if failed:
        print(f"quant-check: int8 does not hold on {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
