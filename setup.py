"""Package discovery for setuptools; all other metadata lives in pyproject.toml.

Every package under irbridge/ is found automatically, and the top-level folders named in
pyproject's [tool.setuptools.package-dir] (passes/, models/) ship as subpackages of irbridge
(irbridge.passes, irbridge.models) together with any packages nested in them.
"""

from setuptools import find_packages, setup

try:
    import tomllib
except ImportError:  # Python 3.10: pyproject's build-system requires tomli there
    import tomli as tomllib

with open("pyproject.toml", "rb") as f:
    MOUNTS = tomllib.load(f)["tool"]["setuptools"]["package-dir"]  # {"irbridge.passes": "passes", ...}

packages = find_packages(include=["irbridge", "irbridge.*"])
for name, folder in MOUNTS.items():
    packages += [name] + [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=sorted(packages), package_dir=MOUNTS)
