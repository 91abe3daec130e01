"""Run every benchmark section in one run and print its figures (make bench)."""
from __future__ import annotations

import importlib
import logging
import platform
import os
import sys

SECTIONS = ("benchmarks.render", "benchmarks.model", "benchmarks.pi", "benchmarks.live", "benchmarks.clock", "benchmarks.jack_loss", "benchmarks.hotplug",
            "benchmarks.monitor")


def main() -> int:
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print(f"groovebox bench on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    failed = 0
    for name in SECTIONS:
        print(f"\n== {name.split('.')[-1]}")
        try:
            importlib.import_module(name).main()
        except Exception as error:  # one broken section must not hide the others' figures
            failed += 1
            print(f"{name} failed: {type(error).__name__}: {error}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
