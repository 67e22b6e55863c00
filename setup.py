"""Build hooks of the csprune package (the metadata is in pyproject.toml).

- setuptools' build files go to build-python/ (not build/, which is where
  meson builds libcsp);
- CSP_BUNDLE_LIBRARY=path/to/libcsp.so.0 copies that library into the
  package (csprune/libcsp.so.0, found first after $CSP_LIBRARY) and makes
  the wheel platform-specific.
"""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

try:
    from wheel.bdist_wheel import bdist_wheel
except ImportError:  # no wheel: pip install still works through setuptools
    bdist_wheel = None

HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLE = os.environ.get("CSP_BUNDLE_LIBRARY")
BUILD = os.path.join(HERE, "build-python")
os.makedirs(BUILD, exist_ok=True)


class BuildPy(build_py):
    def run(self):
        super().run()
        if BUNDLE:
            if not os.path.isfile(BUNDLE):
                raise SystemExit("CSP_BUNDLE_LIBRARY=%s is not a file" % BUNDLE)
            dest = os.path.join(self.build_lib, "csprune", "libcsp.so.0")
            shutil.copyfile(BUNDLE, dest)
            os.chmod(dest, 0o755)


cmds = {"build_py": BuildPy}
if bdist_wheel is not None:
    class BdistWheel(bdist_wheel):
        def finalize_options(self):
            super().finalize_options()
            if BUNDLE:
                self.root_is_pure = False

        def get_tag(self):
            tag = super().get_tag()
            return (tag[0], "none", tag[2]) if BUNDLE else tag
    cmds["bdist_wheel"] = BdistWheel

setup(cmdclass=cmds,
      options={"build": {"build_base": BUILD}, "egg_info": {"egg_base": BUILD}})
