"""Builds wsinspect's optional compiled hot path (wsinspect/_speedups.c); everything
else is in pyproject.toml. A failed build is not a failed install: without a C
compiler wsinspect runs on its pure-Python path, with identical results."""

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing, as aiohttp's and websockets' do."""

    def run(self) -> None:
        try:
            super().run()
        except (PlatformError, OSError) as exc:
            self._skipped(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except (CCompilerError, ExecError, PlatformError, OSError, ValueError) as exc:
            self._skipped(exc)

    def _skipped(self, exc: Exception) -> None:
        self.warn(f"wsinspect: the compiled hot path was not built ({exc}); the pure-Python path will be used")


# WSINSPECT_NO_EXTENSIONS=1 at install time skips the build (at run time, it skips the module).
no_extensions = os.environ.get("WSINSPECT_NO_EXTENSIONS", "") not in ("", "0")
setup(
    ext_modules=[] if no_extensions else [Extension("wsinspect._speedups", ["wsinspect/_speedups.c"], optional=True)],
    cmdclass={"build_ext": OptionalBuildExt},
)
