"""Test configuration.

Without a GPU, Triton kernels run in the Triton interpreter: TRITON_INTERPRET=1 must be set
before triton is first imported, which is why it happens here, at collection time.
GPU tests are marked ``cuda`` and skipped without a GPU (run them with ``pytest -m cuda``).
"""

import os
import sys
from pathlib import Path

import torch

# benchmarks/ is a folder of the checkout, not an installed package: tests that drive it
# import it from the repository root, whichever directory pytest was started from.
_REPO_ROOT = str(Path(__file__).resolve().parents[1])
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _gpu_tests_run_without_tf32(request):
    """GPU tests set TF32 explicitly: off (float32 references are then float32-exact), unless
    a test turns it on with ``testutils.tf32_mode(True)`` and takes the TF32 tolerance. On
    a GPU, cuDNN convolutions (the references' too) otherwise default to TF32."""
    if request.node.get_closest_marker("cuda") is None:
        yield
        return
    from testutils import tf32_mode

    with tf32_mode(False):
        yield


def pytest_configure(config):
    # Under pytest-xdist, share the cores between workers instead of oversubscribing them.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
