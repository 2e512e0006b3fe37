"""The llama.cpp build of the local backend is portable: fixed x86-64-v3 instruction set, no AVX-512, no AMX.

A ``-march=native`` build made on one machine segfaults on another (on AMX Xeons llama.cpp repacks
weights into its AMX buffer and crashes on the first decode, ggml-org/llama.cpp#20824), so the
installed library itself is checked, in a subprocess, not only the flags we pass.
"""

from __future__ import annotations

import importlib.util
import platform
import subprocess
import sys

import pytest

from agent.backends import native

NATIVE_ON_AMX_XEON = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX_VNNI = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
    "AVX512 = 1 | AVX512_VBMI = 1 | AVX512_VNNI = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | LLAMAFILE = 1 | "
    "OPENMP = 1 | REPACK = 1 |"
)
PORTABLE = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | LLAMAFILE = 1 |"


def test_features_are_read_from_system_info() -> None:
    found = native.features(NATIVE_ON_AMX_XEON)
    assert found["AMX_INT8"] and found["AVX2"] and found["OPENMP"]
    assert native.features("AVX2 = 0 | FMA = 1")["AVX2"] is False


def test_a_native_amx_build_is_refused_and_the_portable_one_passes() -> None:
    bad = native.problems(NATIVE_ON_AMX_XEON, machine="x86_64")
    assert any("AMX_INT8" in p for p in bad) and any(p.startswith("AVX512 ") for p in bad)
    assert native.problems(PORTABLE, machine="x86_64") == []
    assert native.problems("CPU : SSE3 = 1 | AVX = 1 |", machine="x86_64"), "x86-64-v3 expects AVX2"


def test_flags_never_native_and_never_amx() -> None:
    flags = native.build_flags("x86_64")
    assert "-DGGML_NATIVE=OFF" in flags and "-DGGML_AVX2=ON" in flags
    assert {"-DGGML_AMX_INT8=OFF", "-DGGML_AMX_TILE=OFF", "-DGGML_AVX512=OFF"} <= set(flags)
    assert not any(f.endswith("=ON") and ("AMX" in f or "AVX512" in f) for f in flags)
    assert native.build_flags("aarch64") == ("-DGGML_NATIVE=OFF",)


def test_the_wheelhouse_is_keyed_by_version_and_flags(tmp_path: object) -> None:
    key = native.build_key()
    assert key == native.build_key(native.LLAMA_CPP_VERSION, native.build_flags())
    assert key != native.build_key(native.LLAMA_CPP_VERSION, (*native.build_flags(), "-DGGML_NATIVE=ON"))
    assert key != native.build_key("0.3.35", native.build_flags())
    assert native.wheelhouse().name.endswith(key)


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python: run `make local`")
@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 build check")
def test_the_installed_library_reports_no_amx_and_no_avx512() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "agent.backends.native", "info"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    found = native.features(out.stdout)
    assert found, f"no features in system info: {out.stdout!r}"
    assert not any(found.get(name) for name in native.FORBIDDEN), out.stdout
    assert found.get("AVX2") and found.get("FMA") and found.get("F16C"), out.stdout


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python: run `make local`")
def test_the_installed_library_is_the_portable_wheel() -> None:
    """`make local` installed exactly the wheel from the flag-keyed wheelhouse, not a build from an index or cache."""
    out = subprocess.run(
        [sys.executable, "-m", "agent.backends.native", "check"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
