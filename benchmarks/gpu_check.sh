#!/usr/bin/env bash
# The speed issue's GPU check, for a machine with a CUDA GPU, in under 5 minutes: versions and
# nvidia-smi, the `cuda` tests (TF32 off), then one JSON of the GPU figures: per model
# batch-1 steps/s of every engine that runs there, samples/s at batch 64, 256 and 1024, and
# training samples/s and peak memory at batch 16 x 16,000.
#
#   bash benchmarks/gpu_check.sh --wheels   # here, with a package index: the wheelhouse
#   bash benchmarks/gpu_check.sh            # there: writes $OUT/gpu_check.{json,log}
#
# The GPU machine has Python 3.12 with torch and triton but not our other dependencies and no
# network: the first form downloads them (benchmarks/gpu_check.requirements) as Python 3.12
# wheels into build/gpu-wheels (carry that folder), the second installs them from there into
# a virtual environment that sees the machine's torch, and runs our packages from the source
# tree (PYTHONPATH). A rehearsal on a CPU: GPU_CHECK_DEVICE=cpu GPU_CHECK_STEPS=4
# GPU_CHECK_LENGTH=1024 GPU_CHECK_BATCHES="1 4" GPU_CHECK_PYTHON=.venv/bin/python (an
# interpreter that has everything: no virtual environment is made).
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=${GPU_CHECK_WHEELS:-build/gpu-wheels}
requirements=benchmarks/gpu_check.requirements

if [[ ${1:-} == --wheels ]]; then
    mkdir -p "$wheels"
    python3 -m pip download --quiet --dest "$wheels" --only-binary=:all: \
        --python-version 3.12 --implementation cp --abi cp312 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any -r "$requirements"
    du -sh "$wheels"
    exit 0
fi

out=${OUT:-build/gpu-check}
device=${GPU_CHECK_DEVICE:-cuda}
steps=${GPU_CHECK_STEPS:-128}
length=${GPU_CHECK_LENGTH:-16000}
read -r -a batches <<< "${GPU_CHECK_BATCHES:-1 64 256 1024}"
mkdir -p "$out"
exec > >(tee "$out/gpu_check.log") 2>&1

work=$(mktemp -d)
if [[ -n ${GPU_CHECK_PYTHON:-} ]]; then
    py=$GPU_CHECK_PYTHON
else
    python3 -m venv --system-site-packages "$work/venv"
    py=$work/venv/bin/python
    if [[ -d $wheels ]]; then
        "$py" -m pip install --quiet --no-index --find-links "$wheels" -r "$requirements"
    else
        echo "no wheelhouse at $wheels: using what the machine has"
    fi
fi
export PYTHONPATH=packages/audio-core/src:packages/ssm-kernels/src:packages/audio-models/src
export AUDIO_MODELS_CACHE=$work/cc   # the C steps' cache, fresh on a fresh machine

echo "== versions"
"$py" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__,
"cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available(): print(torch.cuda.get_device_name(0))'
"$py" -c 'import triton; print("triton", triton.__version__)' || true
nvidia-smi || echo "no nvidia-smi"

echo "== pytest -m cuda"
status=0
"$py" -m pytest -m cuda -q -p no:cacheprovider packages/audio-models/tests/test_cuda.py \
    || status=$?

echo "== benchmarks/generation.py --device $device"
"$py" benchmarks/generation.py --device "$device" \
    --models sashimi sashimi-s4d wavenet samplernn --steps "$steps" --runs 3 --train-runs 2 \
    --batch 16 --length "$length" --gen-batches "${batches[@]}" > "$out/gpu_check.json" \
    || status=$?
cat "$out/gpu_check.json"
exit "$status"
