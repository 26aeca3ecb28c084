"""setup.py - bundle libwouldblock.so (and the scenario library it embeds)
into the package.

The metadata is in pyproject.toml; this only adds the build step. The
library is built from ../shim with the repository's Makefile into the build
directory, or taken from WOULDBLOCK_LIBRARY (a library built already, e.g.
by `make`: the test suite bundles the build it tests). The wheel is
platform-specific: it holds a shared object.

WOULDBLOCK_PY_BUILD moves setuptools' build and egg-info directories out of
the source tree (the test suite installs from a read-only point of view).
"""
import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BUILD_BASE = os.environ.get("WOULDBLOCK_PY_BUILD") or "build"


def library():
    given = os.environ.get("WOULDBLOCK_LIBRARY")
    if given:
        if not os.path.isfile(given):
            raise SystemExit("setup.py: WOULDBLOCK_LIBRARY=%s: no such file" % given)
        return given
    if not os.path.isfile(os.path.join(REPO, "shim", "api.c")):
        raise SystemExit(
            "setup.py: the library's sources (../shim) are not here: install from the "
            "wouldblock repository, or set WOULDBLOCK_LIBRARY to a built libwouldblock.so"
        )
    out = os.path.abspath(os.path.join(BUILD_BASE if os.path.isabs(BUILD_BASE) else
                                       os.path.join(HERE, BUILD_BASE), "c"))
    lib = os.path.join(out, "libwouldblock.so")
    subprocess.check_call(["make", "-s", "-C", REPO, "BUILD=" + out, lib])
    return lib


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "wouldblock")
        os.makedirs(target, exist_ok=True)
        shutil.copy(library(), os.path.join(target, "libwouldblock.so"))
        conf = os.path.join(REPO, "conf", "wouldblock.conf")
        if os.path.isfile(conf):
            shutil.copy(conf, os.path.join(target, "wouldblock.conf"))


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True  # a shared object inside: not a pure-Python wheel


setup(
    cmdclass={"build_py": BuildWithLibrary},
    distclass=BinaryDistribution,
    options={"build": {"build_base": BUILD_BASE},
             "egg_info": {"egg_base": os.environ.get("WOULDBLOCK_PY_BUILD") or "."}},
)
