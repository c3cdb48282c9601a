"""`python -m bench tf-env VERSION`: a virtual environment with another TensorFlow release.

The recipe for comparing TensorFlow releases side by side: this makes (once, then reuses)
`.bench-envs/tf-VERSION`, a venv with `tensorflow-cpu==VERSION.*` and the suite's other
dependencies, and prints the side to give `bench ab`:

    python -m bench tf-env 2.20
    python -m bench ab python:.bench-envs/tf-2.20 .          # B = the default environment

The suite's code is not installed there: an A/B side server puts its code root first on the
import path (bench.ab.sides), so the environment serves every revision. SUPPORTED lists the
releases this suite supports; CI runs the test suite on the newest (the `cpu` extra) and a
smoke run on the oldest through this command. A release that lacks an API a mode needs
records that mode's cells as skipped with the reason.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from bench.errors import UsageError

# Oldest first. 2.16 is the first release whose tf.keras is Keras 3 and that takes numpy 1.26;
# 2.21 is the `cpu` extra's.
SUPPORTED = ("2.16", "2.17", "2.18", "2.19", "2.20", "2.21")
ENVS_DIR = Path(".bench-envs")
# The suite's own dependencies (pyproject.toml) that a side's interpreter needs.
DEPENDENCIES = ("numpy>=1.26", "scipy>=1.11", "pandas>=2.1", "matplotlib>=3.8",
                "seaborn>=0.13", "jinja2>=3.1", "pytest-benchmark>=4.0")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tf-env", help="make a venv with another TensorFlow release (for ab)",
                       description=__doc__.splitlines()[0])
    p.add_argument("version", help=f"TensorFlow release: {', '.join(SUPPORTED)}")
    p.add_argument("--dir", type=Path, default=ENVS_DIR,
                   help=f"where environments go (default {ENVS_DIR})")
    p.set_defaults(func=main)


def env_path(version: str, directory: Path = ENVS_DIR) -> Path:
    if version not in SUPPORTED:
        raise UsageError(f"TensorFlow {version!r} is not a supported release; choose one of "
                         f"{', '.join(SUPPORTED)}")
    return directory / f"tf-{version}"


def make_env(version: str, directory: Path = ENVS_DIR) -> Path:
    """Create (or reuse) the environment; its interpreter must import that release."""
    path = env_path(version, directory)
    python = path / "bin" / "python"
    if not _has_release(python, version):
        steps = [[sys.executable, "-m", "venv", str(path)],
                 [str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"],
                 [str(python), "-m", "pip", "install", "-q", f"tensorflow-cpu=={version}.*",
                  *(("numpy<2",) if version == "2.16" else ()), *DEPENDENCIES]]
        for step in steps:
            print("+ " + " ".join(step), file=sys.stderr)
            if subprocess.run(step).returncode:
                raise UsageError(f"could not make {path} ({' '.join(step[:4])} failed)")
        if not _has_release(python, version):
            raise UsageError(f"{path}: TensorFlow {version} does not import there")
    return path


def _has_release(python: Path, version: str) -> bool:
    if not python.is_file():
        return False
    done = subprocess.run([str(python), "-c", "import tensorflow as tf; print(tf.__version__)"],
                          capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.strip().startswith(version + ".")


def main(args: argparse.Namespace) -> int:
    path = make_env(args.version, args.dir)
    print(f"python:{path}")
    print(f"compare with: python -m bench ab python:{path} .", file=sys.stderr)
    return 0
