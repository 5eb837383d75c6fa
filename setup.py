"""Builds the fast path's C extension, service/core/_fastpath.c and the headers it includes: `python setup.py
build_ext --inplace` (`make fastpath`). Without a compiler the build fails and the service runs on the
reference path.

Compiled -O2 -ffp-contract=off, never fast-math: a fused multiply-add or a reassociated sum changes
the last bit of a number, and the answer must be the reference class's, bit for bit."""

from pathlib import Path

from setuptools import Extension, setup

CORE = Path("service/core")

setup(
    packages=[],
    ext_modules=[
        Extension(
            "service.core._fastpath",
            sources=[str(CORE / "_fastpath.c")],
            depends=[str(header) for header in sorted(CORE.glob("*.h"))],
            include_dirs=[str(CORE)],
            extra_compile_args=["-O2", "-ffp-contract=off", "-fno-fast-math", "-Wall", "-Werror"],
        )
    ],
)
