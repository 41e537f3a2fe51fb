"""The CUDA launcher's default stream: LibTorch's current stream, found with
dlsym in the libc10_cuda.so that `import torch` loaded (docs/design.md).
Without a device the launcher uses the default stream and never calls into
libc10_cuda; the device checks run only where one exists."""
import pytest
import torch

import dqt

needs_cuda_torch = pytest.mark.skipif(
    torch.version.cuda is None, reason="a CPU-only torch build has no libc10_cuda.so")
needs_device = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device here: LibTorch's current stream cannot be queried")


@needs_cuda_torch
def test_entry_points_resolve_in_a_process_that_imported_torch():
    ok, why = dqt._C._cuda_torch_streams()
    assert ok, why
    assert why == ""


@needs_cuda_torch
def test_without_a_device_the_default_stream_and_no_call_into_torch():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device exists: the device tests cover this machine")
    # c10::cuda::getCurrentCUDAStream throws without a device (here: "CUDA
    # driver version is insufficient"), which would surface as an exception;
    # the lookup must not reach it and must answer the default stream.
    assert dqt._C._cuda_current_stream(0) == 0


@needs_device
def test_current_stream_is_torchs_current_stream():
    assert dqt._C._cuda_current_stream(0) == torch.cuda.current_stream(0).cuda_stream
    side = torch.cuda.Stream(device=0)
    with torch.cuda.stream(side):
        assert dqt._C._cuda_current_stream(0) == side.cuda_stream
    assert dqt._C._cuda_current_stream(0) == torch.cuda.current_stream(0).cuda_stream
