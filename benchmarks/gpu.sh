#!/usr/bin/env bash
# The GPU-only cases in one command, offline, on a machine where PyTorch, JAX and Flax are preinstalled and
# nothing can be downloaded (as on many clusters):
#   - torch: nn.LSTM(num_layers=2, dropout=p).cuda() on cuDNN, and on CUDA with cuDNN disabled;
#   - jax.experimental.rnn.lstm on cuDNN (jax_rnn);
#   - Keras 3 on torch and on JAX with use_cudnn left at its default (the cuDNN path where it applies);
#   - cuDNN seed reproducibility: common.seed.reproducible of every case above.
# Results go to results/cuda/ADAPTER.json (device cuda), beside the CPU ones in results/.
#
#   bash benchmarks/gpu.sh fetch     # where pip can download: the wheels dropspec needs there -> .gpu-wheels/
#   bash benchmarks/gpu.sh run       # on the GPU machine (carry .gpu-wheels/ with the working tree)
#   bash benchmarks/gpu.sh dry-run   # anywhere: installs what it can, lists every GPU case and why it is skipped here
#
# What it cannot run it says, case by case: Keras on TensorFlow needs a GPU build of TensorFlow, which such
# machines seldom have; a framework that is not installed is skipped with its reason.
set -uo pipefail
cd "$(dirname "$0")/.."
mode="${1:-dry-run}"
wheels=.gpu-wheels
venv=.gpu-venv
out=results/cuda
python="${PYTHON:-python3}"
# dropspec's own dependencies and Keras: PyTorch, JAX and Flax are the machine's own
# (numpy comes with them; Keras still pulls a wheel of it: about 30 MB travel with the working tree)
needs=(pydantic PyYAML Jinja2 pytest "keras==3.15.1")

fetch() {
  # the GPU machine's Python (3.12 on the machines this project is lent); GPU_PYTHON=311 etc. for another
  "$python" -m pip download --quiet --dest "$wheels" --only-binary=:all: --python-version "${GPU_PYTHON:-312}" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    "${needs[@]}" || return 1
  echo "gpu.sh: $(find "$wheels" -name '*.whl' | wc -l) wheels in $wheels/ ($(du -sh "$wheels" | cut -f1))"
}

py="$python"
install() {
  if [ ! -d "$wheels" ]; then
    echo "gpu.sh: no $wheels/ (run 'bash benchmarks/gpu.sh fetch' where pip can download); using $python as it is"
    return 0
  fi
  # the machine's frameworks stay visible (--system-site-packages); dropspec runs from this working tree
  "$python" -m venv --system-site-packages "$venv" || return 1
  py="$py"
  "$py" -m pip install --quiet --no-index --find-links "$wheels" "${needs[@]}" \
    || echo "gpu.sh: some wheels did not install from $wheels/; what is missing is skipped below"
}

has_gpu() {
  "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null \
    || "$py" -c 'import jax, sys; sys.exit(0 if jax.default_backend() == "gpu" else 1)' 2>/dev/null
}

# adapter, -k words, environment: every GPU-only case, and the few Keras cases whose default path is cuDNN
runs=(
  "torch|cuda|"
  "jax_rnn|cudnn|"
  "keras_torch|lstm-layer-dropout-impl2 or lstm-layer-both-impl2 or gru_reset_after-layer-dropout-impl2|KERAS_BACKEND=torch"
  "keras_jax|lstm-layer-dropout-impl2 or lstm-layer-both-impl2 or gru_reset_after-layer-dropout-impl2|KERAS_BACKEND=jax"
)

each() {
  local action=$1 status=0
  for entry in "${runs[@]}"; do
    IFS='|' read -r adapter words env <<<"$entry"
    if [ "$action" = list ] || ! has_gpu; then
      env $env PYTHONPATH="$PWD" "$py" -m dropspec.cli run --adapter "$adapter" --list -k "$words" \
        | sed "s/would run$/skipped: no GPU here (torch.cuda.is_available() and jax.default_backend() say so)/" \
        || status=1
    else
      env $env PYTHONPATH="$PWD" "$py" -m dropspec.cli run --adapter "$adapter" --out "$out" \
        -k "$words" --timeout 300 --exit-zero || status=1
    fi
  done
  "$py" -c 'import tensorflow' 2>/dev/null \
    || echo "keras_tf: skipped: no TensorFlow here (Keras 3 on TensorFlow needs a GPU build of TensorFlow)"
  return $status
}

case "$mode" in
  fetch) fetch ;;
  run)
    install || exit 1
    start=$(date +%s)
    each run
    status=$?
    echo "gpu.sh: results in $out/ after $(( $(date +%s) - start )) s"
    exit $status
    ;;
  dry-run)
    install || exit 1
    each list
    ;;
  *) echo "usage: bash benchmarks/gpu.sh fetch|run|dry-run" >&2; exit 2 ;;
esac
