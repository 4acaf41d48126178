"""The versions a run records next to its outputs and inside each checkpoint."""

from __future__ import annotations

import platform
from importlib.metadata import distributions


def package_versions() -> dict[str, str]:
    """Versions of Python, torch, torchaudio and every ``sashimi-*`` distribution installed."""
    versions = {"python": platform.python_version()}
    for dist in distributions():
        name = dist.metadata["Name"]
        if name and (name.startswith("sashimi-") or name in {"torch", "torchaudio"}):
            versions[name] = dist.version
    return dict(sorted(versions.items()))
