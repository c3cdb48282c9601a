"""Machine and software facts recorded with every run (TensorFlow facts come from a worker).

The fingerprint decides whether absolute throughput may be compared across runs: same CPU
model, cores, memory, OS, TensorFlow version and GPUs. Speed-up ratios measured within a run
are comparable across machines; absolute images/s are not.
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

ENV_FLAGS = (
    "TF_ENABLE_ONEDNN_OPTS", "TF_XLA_FLAGS", "TF_CPP_MIN_LOG_LEVEL", "OMP_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES", "TF_GPU_ALLOCATOR", "TF_FORCE_GPU_ALLOW_GROWTH", "KMP_BLOCKTIME",
    "OPENBLAS_CORETYPE", "MKL_NUM_THREADS",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def git_facts(cwd: str | None = None) -> dict:
    """Commit and dirtiness of the suite's own checkout (None outside a git tree)."""
    cwd = cwd or str(Path(__file__).resolve().parents[2])

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                 timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def machine_facts() -> dict:
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "env": {k: os.environ[k] for k in ENV_FLAGS if k in os.environ},
        "git": git_facts(),
    }


def fingerprint(facts: dict, device: str) -> str:
    key = "|".join(str(facts.get(k)) for k in ("cpu_model", "cores", "memory_gb", "tensorflow"))
    key += f"|{device}|{facts.get('gpu_names')}|{platform.system()}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]
