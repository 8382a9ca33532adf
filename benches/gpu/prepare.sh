#!/usr/bin/env bash
# Builds, here, what benches/gpu/run.sh runs on a lent GPU machine, and puts it
# where the device tool carries it from (both folders are git-ignored):
#   gpu-bin/  ltk and the device_resident, ensemble, ntk_empirical test binaries
#             (the `cuda` build, stripped)
#   data/fashion-mnist/  Fashion-MNIST's four IDX files
# Needs a CUDA toolkit (README, "Feature flags": CUDA_HOME, nvcc on PATH,
# CUDA_COMPUTE_CAP=90 for an H200). Then, on the device:
#   run(command="BIN=gpu-bin IDX=data/fashion-mnist OUT=$OUT bash benches/gpu/run.sh",
#       carry=["gpu-bin", "data/fashion-mnist"])
# with LD_LIBRARY_PATH naming the driver's libcuda and the toolkit's libraries.
set -eu
TARGET=${CARGO_TARGET_DIR:-target-cuda}
FEATURES=${FEATURES:-cuda}
CARGO_TARGET_DIR=$TARGET cargo build --release --features "$FEATURES" --bin ltk
CARGO_TARGET_DIR=$TARGET cargo test --release --features "$FEATURES" --no-run \
    --test device_resident --test ensemble --test ntk_empirical 2>&1 | tee /tmp/gpu-prepare.log
mkdir -p gpu-bin data/fashion-mnist
cp "$TARGET/release/ltk" gpu-bin/ltk
for t in device_resident ensemble ntk_empirical; do
    f=$(grep -o "$TARGET/release/deps/$t-[0-9a-f]*" /tmp/gpu-prepare.log | tail -1)
    cp "$f" "gpu-bin/$t"
done
strip gpu-bin/* || true
cp /usr/share/datasets/fashion-mnist/*-ubyte.gz data/fashion-mnist/
du -sh gpu-bin data/fashion-mnist
echo "the device tool carries at most 64 MiB in all"
