"""Builds the fast path's C extension, service/core/_fastpath.c: `python setup.py build_ext --inplace`
(`make fastpath`). Without a compiler the build fails and the service runs on the reference path.

Compiled -O2 -ffp-contract=off, never fast-math: a fused multiply-add or a reassociated sum changes
the last bit of a number, and the answer must be the seed's, bit for bit."""

from setuptools import Extension, setup

setup(
    packages=[],
    ext_modules=[
        Extension(
            "service.core._fastpath",
            sources=["service/core/_fastpath.c"],
            include_dirs=["service/core"],
            extra_compile_args=["-O2", "-ffp-contract=off", "-fno-fast-math", "-Wall", "-Werror"],
        )
    ],
)
