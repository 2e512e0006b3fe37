"""A portable llama.cpp build for the ``local`` backend: built once for a fixed instruction set, never native.

Why: llama-cpp-python ships only an sdist, and its default build compiles llama.cpp with
``-march=native``. A wheel built that way on one machine is wrong for another, and on Intel Xeons
with AMX llama.cpp repacks the weights into its AMX buffer type and segfaults on the first decode
(ggml-org/llama.cpp issue 20824). pip caches built wheels by version, not by CPU, so a native wheel
built on one machine is silently reused on the next.

So ``make local`` runs ``python -m agent.backends.native install``, which

1. builds llama-cpp-python for x86-64-v3 (AVX, AVX2, FMA, F16C: every x86-64 server CPU since
   Intel Haswell, 2013, and AMD Zen, 2017) with ``GGML_NATIVE=OFF`` and AVX-512 / AMX explicitly
   off, with ``--no-cache-dir`` so pip's own wheel cache never holds it;
2. keeps the wheel in a wheelhouse whose folder name carries a hash of the version *and* the build
   flags (``~/.cache/persona-agent/wheels/llama-cpp-python-0.3.36-<hash>``), so a wheel built with
   other flags can never be mistaken for it;
3. installs exactly that file (never resolving ``llama-cpp-python`` through an index), replacing
   any other build already in the venv (pip records the file it came from in ``direct_url.json``);
4. checks ``llama_print_system_info()`` of the installed library: AVX2 on, no AVX-512, no AMX.

``python -m agent.backends.native check`` exits 0 only when the installed build is that wheel and
passes the check; ``info`` prints the library's system info. On other architectures (aarch64) the
only flag is ``GGML_NATIVE=OFF``: the compiler's baseline for the target.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

LLAMA_CPP_VERSION = "0.3.36"
# x86-64-v3 without AVX-512 and AMX; names as in ggml/CMakeLists.txt of llama.cpp.
X86_64_FLAGS = (
    "-DGGML_NATIVE=OFF",
    "-DGGML_AVX=ON",
    "-DGGML_AVX2=ON",
    "-DGGML_FMA=ON",
    "-DGGML_F16C=ON",
    "-DGGML_BMI2=ON",
    "-DGGML_AVX512=OFF",
    "-DGGML_AVX512_VBMI=OFF",
    "-DGGML_AVX512_VNNI=OFF",
    "-DGGML_AVX512_BF16=OFF",
    "-DGGML_AVX_VNNI=OFF",
    "-DGGML_AMX_TILE=OFF",
    "-DGGML_AMX_INT8=OFF",
    "-DGGML_AMX_BF16=OFF",
)
OTHER_FLAGS = ("-DGGML_NATIVE=OFF",)
# Features a portable build must not report as compiled in (ggml's cpu feature names).
FORBIDDEN = ("AMX_INT8", "AMX_TILE", "AMX_BF16", "AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AVX_VNNI")
SERVER_EXTRA = "server"


def build_flags(machine: str | None = None) -> tuple[str, ...]:
    """The CMake flags of the portable build for ``machine`` (``platform.machine()`` by default)."""
    machine = (machine or platform.machine()).lower()
    return X86_64_FLAGS if machine in ("x86_64", "amd64") else OTHER_FLAGS


def build_key(version: str = LLAMA_CPP_VERSION, flags: tuple[str, ...] | None = None) -> str:
    """12 hex digits of sha1(version, flags): the wheelhouse folder changes whenever either does."""
    text = " ".join((version, *(flags if flags is not None else build_flags())))
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def wheelhouse(root: Path | None = None) -> Path:
    """Where the portable wheel is kept: ``$PERSONA_WHEELHOUSE`` or ~/.cache/persona-agent/wheels, plus the key."""
    base = root or Path(os.environ.get("PERSONA_WHEELHOUSE") or Path.home() / ".cache" / "persona-agent" / "wheels")
    return base / f"llama-cpp-python-{LLAMA_CPP_VERSION}-{build_key()}"


def built_wheel(house: Path) -> Path | None:
    """The wheel in ``house``, or None (``py3-none-linux_x86_64``: the binding loads its library with ctypes)."""
    found = sorted(house.glob(f"llama_cpp_python-{LLAMA_CPP_VERSION}-*.whl"))
    return found[-1] if found else None


def system_info() -> str:
    """``llama_cpp.llama_print_system_info()`` of the installed library, decoded.

    Raises ImportError if llama-cpp-python is not installed. Loads the native library in *this*
    process: call it from a subprocess (``python -m agent.backends.native info``) where a crash matters.
    """
    import llama_cpp

    raw = llama_cpp.llama_print_system_info()
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def features(info: str) -> dict[str, bool]:
    """``"AVX2 = 1 | AMX_INT8 = 0 | ..."`` -> {"AVX2": True, "AMX_INT8": False, ...}."""
    return {name: value != "0" for name, value in re.findall(r"([A-Z0-9_]+)\s*=\s*(\d+)", info)}


def problems(info: str, machine: str | None = None) -> list[str]:
    """What makes a build unportable, from its system info; [] for a good build."""
    found = features(info)
    bad = [f"{name} is compiled in" for name in FORBIDDEN if found.get(name)]
    if (machine or platform.machine()).lower() in ("x86_64", "amd64") and not found.get("AVX2"):
        bad.append("AVX2 is not compiled in (expected for the x86-64-v3 build)")
    return bad


def installed_from() -> str | None:
    """The file URL pip installed llama-cpp-python from (PEP 610 direct_url.json), or None."""
    from importlib import metadata

    try:
        dist = metadata.distribution("llama_cpp_python")
    except metadata.PackageNotFoundError:
        return None
    raw = dist.read_text("direct_url.json")
    if not raw:
        return None
    try:
        return str(json.loads(raw).get("url") or "") or None
    except ValueError:
        return None


def _info_in_subprocess() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "agent.backends.native", "info"], capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0:
        raise RuntimeError(f"loading llama_cpp failed (exit {out.returncode}): {out.stderr.strip()[-500:]}")
    return out.stdout


def check(house: Path) -> list[str]:
    """Why the installed build is not the portable wheel of ``house``; [] when it is."""
    wheel = built_wheel(house)
    origin = installed_from()
    if origin is None:
        return ["llama-cpp-python is not installed from a wheel file (not installed, or built from an index)"]
    if wheel is None or not origin.endswith("/" + wheel.name) or Path(origin.removeprefix("file://")).parent != house:
        return [f"llama-cpp-python was installed from {origin}, not from the portable wheelhouse {house}"]
    return problems(_info_in_subprocess())


def build(house: Path) -> Path:
    """Compile the portable wheel into ``house`` (about 6 min on 2 cores); returns its path."""
    house.mkdir(parents=True, exist_ok=True)
    flags = " ".join(build_flags())
    env = {**os.environ, "CMAKE_ARGS": flags, "FORCE_CMAKE": "1"}
    print(f"building llama-cpp-python {LLAMA_CPP_VERSION} with {flags} (once; about 6 min on 2 cores)", flush=True)
    subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "--quiet", "--no-cache-dir", "--no-deps",
            "--no-binary", "llama-cpp-python", "-w", str(house), f"llama-cpp-python=={LLAMA_CPP_VERSION}",
        ],
        env=env,
        check=True,
    )
    wheel = built_wheel(house)
    if wheel is None:
        raise RuntimeError(f"pip wheel succeeded but left no llama_cpp_python wheel in {house}")
    return wheel


def install(house: Path) -> None:
    """Build (if needed) and install the portable wheel, replacing any other llama-cpp-python build.

    Raises RuntimeError (exit 1 from the command line) if the installed library still reports a
    forbidden feature.
    """
    wheel = built_wheel(house) or build(house)
    # --force-reinstall --no-deps: replace whatever build is there with exactly this file.
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-cache-dir", "--force-reinstall", "--no-deps",
         str(wheel)],
        check=True,
    )
    # Then the [server] extra's pure-Python dependencies; llama-cpp-python itself is satisfied.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", f"{wheel}[{SERVER_EXTRA}]"], check=True)
    bad = problems(_info_in_subprocess())
    if bad:
        raise RuntimeError(f"the installed llama.cpp build is not portable: {'; '.join(bad)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent.backends.native",
        description="The portable llama.cpp build of the local backend "
        "(x86-64-v3; never -march=native, AVX-512 or AMX).",
    )
    parser.add_argument("command", choices=("install", "check", "info", "flags"))
    parser.add_argument("--wheelhouse", type=Path, default=None, help="folder of built wheels (default: %(default)s)")
    args = parser.parse_args(argv)
    house = wheelhouse(args.wheelhouse)
    if args.command == "info":
        print(system_info())
        return 0
    if args.command == "flags":
        print(" ".join(build_flags()))
        print(house)
        return 0
    if args.command == "check":
        bad = check(house)
        for line in bad:
            print(line, file=sys.stderr)
        return 1 if bad else 0
    try:
        if not check(house):
            print(f"llama-cpp-python: the portable build from {house} is installed")
            return 0
        install(house)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"llama-cpp-python: installed the portable build from {house}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
