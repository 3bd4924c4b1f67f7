"""Build lucid's Cython kernels, with OpenMP when the compiler can link and run it.

The OpenMP probe compiles, links and *runs* a tiny program, because a compiler
may accept ``-fopenmp`` and still fail to link or load the runtime. It uses the
compiler the extensions are built with, so ``CC`` and ``CFLAGS`` reach it as
they reach the build, and passes ``LDFLAGS`` before the objects when it links
(as scikit-learn's probe does: an OpenMP runtime outside the default paths is
found through ``-L``/``-Wl,-rpath`` there). Without a working OpenMP the build
falls back to a serial extension with a warning; ``LUCID_REQUIRE_OPENMP=1``
turns that fallback into an error.
"""
import glob
import os
import shlex
import subprocess
import sys
import tempfile
import warnings

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_PROBE = r"""
#include <omp.h>
#include <stdio.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    printf("%d\n", n > 0 && omp_get_max_threads() > 0);
    return 0;
}
"""

# -O3 for vectorised loops. No tuning for the build machine's CPU and no
# fast-math: builds stay portable (wide SIMD comes from runtime dispatch in
# lucid/_ext/_simd.pyx) and NaN/inf keep IEEE semantics.
BASE_COMPILE_ARGS = ["-O3", "-fno-math-errno"]


def openmp_works(compiler, flag):
    """Return True if ``flag`` lets ``compiler`` build and run an OpenMP program."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as f:
            f.write(OPENMP_PROBE)
        try:
            objects = compiler.compile([source], output_dir=tmp, extra_postargs=[flag])
            exe = os.path.join(tmp, "probe")
            # The build's own link honours LDFLAGS; an executable link does not, unless told.
            link_preargs = shlex.split(os.environ.get("LDFLAGS", ""))
            compiler.link_executable(objects, exe, extra_preargs=link_preargs, extra_postargs=[flag])
            out = subprocess.run([exe], capture_output=True, text=True, timeout=60)
        except Exception:  # any compile, link or run failure means "no OpenMP"
            return False
        return out.returncode == 0 and out.stdout.strip() == "1"


class BuildExtWithOpenMP(build_ext):
    def build_extensions(self):
        use_openmp = openmp_works(self.compiler, "-fopenmp")
        if not use_openmp:
            message = ("lucid: the C compiler cannot build and run an OpenMP "
                       "program; building a serial lucid (one thread).")
            if os.environ.get("LUCID_REQUIRE_OPENMP", "0") == "1":
                sys.exit(message + " LUCID_REQUIRE_OPENMP=1 forbids that.")
            warnings.warn(message)
        flags = ["-fopenmp"] if use_openmp else []
        for ext in self.extensions:
            ext.extra_compile_args = BASE_COMPILE_ARGS + flags
            ext.extra_link_args = flags
            ext.define_macros.append(("LUCID_COMPILE_ARGS",
                                      '"' + " ".join(ext.extra_compile_args) + '"'))
        super().build_extensions()


def extensions():
    sources = sorted(glob.glob(os.path.join("lucid", "_ext", "*.pyx")))
    exts = [
        Extension(
            "lucid._ext." + os.path.splitext(os.path.basename(src))[0],
            [src],
            include_dirs=[numpy.get_include(), os.path.join("lucid", "_ext")],
            # The C headers, so that editing one rebuilds the modules.
            depends=sorted(glob.glob(os.path.join("lucid", "_ext", "*.h"))),
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        )
        for src in sources
    ]
    return cythonize(exts, language_level=3,
                     compiler_directives={"boundscheck": False, "wraparound": False,
                                          "cdivision": True, "initializedcheck": False})


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExtWithOpenMP})
