"""The one compiled part of poolviz, optional: everything else is in pyproject.toml.

``poolviz.pools._busypath`` records the usual checkout and check-in in C (see
``poolviz/pools/busypath.py``). Without a C compiler the build goes on
without it and poolviz runs the same Python it falls back to.
"""

from pathlib import Path

from setuptools import Extension, setup

PARTS = sorted(str(path) for path in Path("poolviz/pools/busypath_src").glob("*.h"))

setup(
    ext_modules=[
        Extension("poolviz.pools._busypath", ["poolviz/pools/_busypath.c"], depends=PARTS, optional=True),
    ]
)
