"""Fixed seeds for every test; Triton's interpreter where no GPU exists.

``TRITON_INTERPRET=1`` must be set before a Triton kernel is defined, so it is set here, at
collection, when torch sees no CUDA device (``test_triton.py`` then runs the ``triton``
engine's kernels on CPU tensors); a GPU machine runs them for real (``test_cuda.py``).
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
