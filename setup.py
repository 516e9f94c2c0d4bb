"""Build the compiled core: the explicit list of Cython extensions.

Everything else about the package lives in pyproject.toml. Compiler
directives are set once here for every module; ``ICHNAEA_CYTHON_DEBUG=1``
turns bounds, wraparound and initialisation checks back on for debugging.
"""

import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("ICHNAEA_CYTHON_DEBUG", "") == "1"

COMPILER_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "nonecheck": DEBUG,
    "embedsignature": True,
}

# One entry per kernel module; keep explicit so a stray .pyx is never built.
KERNELS = [
    "_geodesy",
    "_clustering",
    "_weighting",
    "_station",
    "_index",
    "_query",
    "_sqltext",
    "_rows",
    "_reports",
    "_answer",
]


def _extension(name: str) -> Extension:
    return Extension(
        f"ichnaea._fast.{name}",
        [f"ichnaea/_fast/{name}.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"] if not DEBUG else ["-O0", "-g"],
    )


setup(
    ext_modules=cythonize(
        [_extension(name) for name in KERNELS],
        compiler_directives=COMPILER_DIRECTIVES,
    ),
)
