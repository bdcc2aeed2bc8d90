"""Build the Cython core. Metadata lives in pyproject.toml."""
import os
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from core_cy import gen_fields  # noqa: E402

gen_fields.main()

MODULES = ["physmem", "vmsa", "caches", "smmuv3", "walk", "ptbuild", "scan", "vtd"]
debug = os.environ.get("SMMUDBG_CYTHON_DEBUG") == "1"
directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "cdivision": True,
    "embedsignature": True,
}
extensions = [
    Extension(f"core_cy.{m}", [f"core_cy/{m}.pyx"], include_dirs=[numpy.get_include()],
              extra_compile_args=["-O2"] if not debug else ["-O0", "-g"],
              define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")])
    for m in MODULES if os.path.exists(f"core_cy/{m}.pyx")
]
setup(ext_modules=cythonize(extensions, compiler_directives=directives,
                            annotate=os.environ.get("SMMUDBG_CYTHON_ANNOTATE") == "1"))
