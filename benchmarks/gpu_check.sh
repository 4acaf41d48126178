#!/usr/bin/env bash
# The speed issue's GPU check, for a machine with a CUDA GPU, in about 5 minutes: versions and
# nvidia-smi, the `cuda` tests (TF32 off), then the GPU figures as JSON: per model batch-1
# steps/s of every engine that runs there and samples/s at batch 64, 256 and 1024
# (generation.py), with GPU_CHECK_SWEEP=1 the triton engine's launch settings swept per
# tier (gpu_profile.py --part sweep, 3 more minutes), training samples/s and peak memory at
# batch 16 x 16,000 (train_step.py: bf16 under torch.compile, its caches filled in the
# background meanwhile; bf16 and fp32 eager), and where the time goes (gpu_profile.py).
#
#   bash benchmarks/gpu_check.sh --wheels   # here, with a package index: the wheelhouse
#   bash benchmarks/gpu_check.sh            # there: writes $OUT/gpu_*.json and gpu_check.log
#
# The GPU machine has Python 3.12 with torch and triton but not all of our dependencies, and
# no network: the first form downloads them (benchmarks/gpu_check.requirements, at the
# versions of constraints/ci.txt) as Python 3.12 wheels into build/gpu-wheels (carry that
# folder); the second installs from there, into that machine's Python, only what it lacks or
# has too old (pip resolves against what is installed), and runs our packages from the source
# tree (PYTHONPATH). Every stage runs under a time limit and the whole under
# GPU_CHECK_BUDGET seconds (360): a stage that fails or runs out of time is recorded in
# gpu_stages.jsonl and the next one runs; GPU_CHECK_SKIP="stage ..." leaves stages out. A
# rehearsal on a CPU (no sweep there: it replays CUDA graphs): GPU_CHECK_DEVICE=cpu
# GPU_CHECK_LENGTH=1024 GPU_CHECK_BATCHES="1 4" GPU_CHECK_PYTHON=.venv/bin/python (an
# interpreter that has everything: nothing is installed).
set -uo pipefail
cd "$(dirname "$0")/.."
wheels=${GPU_CHECK_WHEELS:-build/gpu-wheels}
requirements=benchmarks/gpu_check.requirements

if [[ ${1:-} == --wheels ]]; then
    mkdir -p "$wheels"
    python3 -m pip download --quiet --dest "$wheels" --only-binary=:all: \
        --python-version 3.12 --implementation cp --abi cp312 \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform any \
        -c constraints/ci.txt -r "$requirements" || exit 1
    du -sh "$wheels"
    exit 0
fi

out=${OUT:-build/gpu-check}
device=${GPU_CHECK_DEVICE:-cuda}
length=${GPU_CHECK_LENGTH:-16000}
budget=${GPU_CHECK_BUDGET:-360}
read -r -a batches <<< "${GPU_CHECK_BATCHES:-1 64 256 1024}"
mkdir -p "$out"
exec > >(tee "$out/gpu_check.log") 2>&1
began=$SECONDS
stages=$out/gpu_stages.jsonl
failed=0
: > "$stages"

work=$(mktemp -d)
export TRITON_CACHE_DIR=$work/triton TORCHINDUCTOR_CACHE_DIR=$work/inductor
export AUDIO_MODELS_CACHE=$work/cc   # the C steps' cache, fresh on a fresh machine
export PYTHONUNBUFFERED=1
py=${GPU_CHECK_PYTHON:-python3}
if [[ -z ${GPU_CHECK_PYTHON:-} ]]; then
    if [[ -d $wheels ]]; then
        echo "== installing what the machine lacks from $wheels"
        if ! "$py" -m pip install --quiet --no-index --find-links "$wheels" -r "$requirements"; then
            echo "pip could not install into the machine's Python: using a target folder"
            "$py" -m pip install --quiet --no-index --find-links "$wheels" --no-deps \
                --target "$work/site" "$wheels"/*.whl
            export PYTHONPATH=$work/site
        fi
    else
        echo "no wheelhouse at $wheels: using what the machine has"
    fi
fi
src=packages/audio-core/src:packages/ssm-kernels/src:packages/audio-models/src
export PYTHONPATH=$src${PYTHONPATH:+:$PYTHONPATH}

# The launch sweep (about 3 minutes) runs only when asked for, and only on CUDA (graphs).
[[ $device == cuda && ${GPU_CHECK_SWEEP:-0} == 1 ]] || GPU_CHECK_SKIP="${GPU_CHECK_SKIP:-} sweep"
skipped() { [[ " ${GPU_CHECK_SKIP:-} " == *" $1 "* ]]; }

# stage NAME CAP_SECONDS OUTPUT_FILE COMMAND...: run COMMAND (stdout into OUTPUT_FILE,
# appended where it starts with "+", or the log where "-") under min(CAP, what is left of the
# budget); record its exit and seconds. GPU_CHECK_SKIP names stages not to run.
stage() {
    local name=$1 cap=$2 file=$3
    shift 3
    if skipped "$name"; then
        echo "== $name: skipped (GPU_CHECK_SKIP)"
        return
    fi
    local left=$((budget - (SECONDS - began)))
    local limit=$((cap < left ? cap : left))
    if ((limit < 15)); then
        echo "== $name: skipped (${left} s of the budget left)"
        echo "{\"stage\": \"$name\", \"skipped\": true}" >> "$stages"
        failed=1
        return
    fi
    echo "== $name (limit ${limit} s)"
    local start=$SECONDS rc
    if [[ $file == - ]]; then
        timeout -k 10 "$limit" "$@"
    elif [[ $file == +* ]]; then
        timeout -k 10 "$limit" "$@" >> "${file#+}"
    else
        timeout -k 10 "$limit" "$@" > "$file"
    fi
    rc=$?
    ((rc == 0)) || failed=1
    echo "== $name: exit $rc after $((SECONDS - start)) s"
    echo "{\"stage\": \"$name\", \"exit\": $rc, \"seconds\": $((SECONDS - start))}" >> "$stages"
}

echo "== versions"
"$py" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__,
"cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available(): print(torch.cuda.get_device_name(0))'
"$py" -c 'import triton; print("triton", triton.__version__)' || true
nvidia-smi || echo "no nvidia-smi"

gen=(benchmarks/generation.py --device "$device" --gen-batches "${batches[@]}" --train-runs 0)
train=(benchmarks/train_step.py --device "$device" --batch 16 --length "$length" --runs 3)
timeout_flag=()
if "$py" -c 'import pytest_timeout' 2> /dev/null; then timeout_flag=(--timeout 120); fi

# torch.compile's first training step compiles for a minute or more on many cores: fill its
# caches in the background while the GPU-bound stages run, so that the timed training
# stages start warm.
warm=()
if ! skipped train-s4-bf16-inductor; then
    warm_limit=$((budget - (SECONDS - began) - 60))
    ((warm_limit < 240)) || warm_limit=240
    ((warm_limit > 15)) || warm_limit=15
    for kernel in s4 s4d; do
        timeout -k 10 "$warm_limit" "$py" "${train[@]}" --kernel "$kernel" --precision bf16 \
            --compile inductor --runs 0 > "$work/warm_$kernel.json" 2> "$work/warm_$kernel.err" &
        warm+=($!)
    done
fi

# The targets first (the triton engine's figures and launch settings), then the tests, then
# training, then the rest.
stage generation-sashimi 150 "$out/gpu_generation.json" \
    "$py" "${gen[@]}" --models sashimi sashimi-s4d --engines eager triton --steps 32 --runs 3
stage sweep 220 "$out/gpu_sweep.json" "$py" benchmarks/gpu_profile.py --device "$device" \
    --part sweep --kernels s4 s4d --sweep-batches 1 64 256 1024
stage pytest-cuda 180 - "$py" -m pytest -m cuda -q -rA -p no:cacheprovider "${timeout_flag[@]}" \
    packages/audio-models/tests/test_cuda.py
if ((${#warm[@]})); then
    echo "== waiting for the compile caches"
    for pid in "${warm[@]}"; do wait "$pid" || echo "a warm-up exited with $?"; done
    for kernel in s4 s4d; do
        echo "-- warm-up $kernel (cold compile):"
        cat "$work/warm_$kernel.json"
        tail -n 5 "$work/warm_$kernel.err"
    done
fi
stage train-s4-bf16-inductor 90 +"$out/gpu_train.json" \
    "$py" "${train[@]}" --kernel s4 --precision bf16 --compile inductor
stage train-s4d-bf16-inductor 90 +"$out/gpu_train.json" \
    "$py" "${train[@]}" --kernel s4d --precision bf16 --compile inductor
stage train-s4-bf16 40 +"$out/gpu_train.json" "$py" "${train[@]}" --kernel s4 --precision bf16
stage train-s4-fp32 40 +"$out/gpu_train.json" "$py" "${train[@]}" --kernel s4
stage profile 120 "$out/gpu_profile.json" "$py" benchmarks/gpu_profile.py --device "$device" \
    --batches 1 "${batches[-1]}" --length "$length" --precision bf16 --compile none
stage generation-others 90 "$out/gpu_generation_others.json" \
    "$py" "${gen[@]}" --models wavenet samplernn --steps 32 --runs 2

echo "== stages"
cat "$stages"
echo "== done in $((SECONDS - began)) s"
exit "$failed"
