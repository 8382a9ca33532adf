#!/usr/bin/env bash
# ResNet-20 and VGG-16 at 32x32x3, batch 128, SGD momentum: ltk's CPU path
# (cargo bench train_step_cifar_b128) against PyTorch eager
# (benches/peers/pytorch_cifar.py), interleaved: PyTorch before and after.
# THREADS (default: all cores) sets both sides' threads; PY the Python with torch.
#   bash benches/peers/cifar_throughput.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python3}
THREADS=${THREADS:-$(nproc)}
isa=AVX2; grep -q avx512f /proc/cpuinfo && isa=AVX-512
echo "machine:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(nproc) cores, $isa; $THREADS threads"
$PY benches/peers/pytorch_cifar.py --threads "$THREADS"
RAYON_NUM_THREADS=$THREADS cargo bench --bench train_throughput -- train_step_cifar_b128 2>&1 \
    | grep -E "^train_step_cifar|thrpt" | sed 's/^ *//'
$PY benches/peers/pytorch_cifar.py --threads "$THREADS"
