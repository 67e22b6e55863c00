#!/bin/sh
# The PyTorch integration's checks that need a CUDA GPU (issue 16), for a
# machine that has one; CI has none and never runs this (the same tests skip
# there). From the root of the source tree, with a built libcsp:
#   CSP_LIBRARY=build/lib/libcsp.so.0 sh tools/gpu-check.sh [python3]
# Runs the torch tests (the CUDA ones included: test_torch_devices.py's
# test_cuda_parameters) and bench/torch_step.py on the CPU and the GPU
# (per-step cost against an Adam step on the same device).
set -u
cd "$(dirname "$0")/.."
py=${1:-python3}
: "${CSP_LIBRARY:?set CSP_LIBRARY to the built libcsp.so.0}"
export CSP_LIBRARY
rc=0
"$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' || exit 1
"$py" -m pytest -q -p no:cacheprovider -rs tests/python/test_torch.py \
    tests/python/test_torch_devices.py tests/python/test_torch_layers.py \
    tests/python/test_torch_ddp.py || rc=1
"$py" bench/torch_step.py --device all --width 1024 --layers 4 --steps 30 || rc=1
"$py" bench/torch_step.py --device cuda --width 4096 --layers 4 --steps 30 --no-acts || rc=1
exit $rc
