"""Package list for the folder mapping in pyproject.toml.

`envs/`, `agents/` and `conf/` install as `embodied.envs`, `embodied.agents` and
`embodied.conf`; listing their subpackages here means a new agent or env folder
needs no packaging edit.
"""

from setuptools import find_packages, setup


def _mapped(prefix: str, folder: str) -> list[str]:
    return [prefix] + [f"{prefix}.{name}" for name in find_packages(folder)]


setup(
    packages=find_packages(include=["embodied", "embodied.*"])
    + _mapped("embodied.envs", "envs")
    + _mapped("embodied.agents", "agents")
    + _mapped("embodied.conf", "conf")
    + ["hydra_plugins.embodied_sweeper"]  # Hydra loads plugins only from its hydra_plugins namespace
)
