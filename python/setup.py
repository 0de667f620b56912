"""`pip install --no-build-isolation ./python` from a checkout, offline, with Debian's setuptools: configures the
repository with CMake, builds the extension target only, and packages build/python/onnxpipe as it is laid out for
PYTHONPATH. CMAKE_ARGS (space separated) passes options such as -DONNXRUNTIME_ROOT=DIR."""
import os
import shlex
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build = os.path.abspath(os.path.join(self.build_temp, "cmake"))
        subprocess.run(["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DONNXPIPE_BUILD_TESTS=OFF",
                        f"-DPython3_EXECUTABLE={sys.executable}", "-DONNXPIPE_BUILD_PYTHON=ON",
                        *shlex.split(os.environ.get("CMAKE_ARGS", ""))], check=True)
        subprocess.run(["cmake", "--build", build, "--target", "_onnxpipe", "-j", str(os.cpu_count() or 2)],
                       check=True)
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        built = os.path.join(build, "python", "onnxpipe", os.path.basename(target))
        shutil.copyfile(built, target)
        shutil.copyfile(os.path.join(ROOT, "scripts", "plot.py"),
                        os.path.join(os.path.dirname(target), "_plot.py"))


setup(name="onnxpipe", version="0.1.0", packages=["onnxpipe"], package_data={"onnxpipe": ["*.pyi", "py.typed"]},
      ext_modules=[Extension("onnxpipe._onnxpipe", sources=[])], cmdclass={"build_ext": CMakeBuild},
      python_requires=">=3.9", install_requires=["numpy"])
