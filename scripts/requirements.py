"""The runtime set from pyproject.toml as pip arguments, for install.sh and image/build.sh.

    python3 scripts/requirements.py deps      requirements pip installs with their dependencies
    python3 scripts/requirements.py no-deps   requirements pip installs without (see [tool.groovebox])
    python3 scripts/requirements.py build     the build backend's requirements (setuptools, wheel)

onnxruntime declares sympy, coloredlogs, flatbuffers and protobuf for its tools (symbolic shape
inference, quantisation, the ORT format); inference needs only numpy, which the runtime set has.
Installing it with --no-deps keeps ~80 MB the box never imports off the card.
Standard library only (tomllib: Python 3.11, Debian bookworm / Raspberry Pi OS bookworm).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
import tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("deps", "no-deps", "build"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    data = tomllib.loads(PYPROJECT.read_text())
    if argv[1] == "build":
        wanted = data["build-system"]["requires"]
    else:
        no_deps = {_name(r) for r in data.get("tool", {}).get("groovebox", {}).get("install-no-deps", [])}
        runtime = data["project"]["dependencies"]
        wanted = [r for r in runtime if (_name(r) in no_deps) == (argv[1] == "no-deps")]
    print("\n".join(wanted))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
