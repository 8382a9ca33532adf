#!/usr/bin/env bash
# Builds, here, what benches/gpu/run.sh runs on a lent GPU machine, and puts it
# where the device tool carries it from (both folders are git-ignored):
#   gpu-bin/bundle.tar.xz  ltk and the device_resident, ensemble, ntk_empirical
#             test binaries (the `cuda` build, stripped; run.sh unpacks it)
#   data/fashion-mnist/  Fashion-MNIST's four IDX files
# Needs a CUDA toolkit (README, "Feature flags": CUDA_HOME, nvcc on PATH,
# CUDA_COMPUTE_CAP=90 for an H200). Then, on the device:
#   run(command="BIN=gpu-bin IDX=data/fashion-mnist OUT=$OUT bash benches/gpu/run.sh",
#       carry=["gpu-bin", "data/fashion-mnist"])
# with LD_LIBRARY_PATH naming the driver's libcuda and the toolkit's libraries.
set -eu
TARGET=${CARGO_TARGET_DIR:-target-cuda}
FEATURES=${FEATURES:-cuda}
# Without an NVIDIA driver here, linking needs a stub libcuda.so.1 defining
# the driver functions cudarc calls: made from cudarc's undefined symbols
# after a first (failing) link, then the build is run again.
STUB="$TARGET/stub-libcuda"
export LIBRARY_PATH="$STUB${LIBRARY_PATH:+:$LIBRARY_PATH}"
if ! CARGO_TARGET_DIR=$TARGET cargo build --release --features "$FEATURES" --bin ltk; then
    mkdir -p "$STUB"
    nm "$TARGET"/release/deps/libcudarc-*.rlib 2>/dev/null | awk '/ U cu[A-Z]/ {print $2}' | sort -u \
        | awk '{print "int " $1 "(void) { return 999; }"}' > "$STUB/stub.c"
    gcc -shared -fPIC -o "$STUB/libcuda.so" -Wl,-soname,libcuda.so.1 "$STUB/stub.c"
    CARGO_TARGET_DIR=$TARGET cargo build --release --features "$FEATURES" --bin ltk
fi
CARGO_TARGET_DIR=$TARGET cargo test --release --features "$FEATURES" --no-run \
    --test device_resident --test ensemble --test ntk_empirical 2>&1 | tee /tmp/gpu-prepare.log
mkdir -p gpu-bin data/fashion-mnist
stage=$(mktemp -d)
cp "$TARGET/release/ltk" "$stage/ltk"
for t in device_resident ensemble ntk_empirical; do
    f=$(grep -o "$TARGET/release/deps/$t-[0-9a-f]*" /tmp/gpu-prepare.log | tail -1)
    cp "$f" "$stage/$t"
done
strip "$stage"/* || true
# The four binaries are ~60 MB each (candle's PTX), mostly the same bytes: one
# xz stream with a dictionary larger than a binary stores them in ~10 MB.
tar -C "$stage" -cf - ltk device_resident ensemble ntk_empirical | xz -T2 -9e --lzma2=dict=192MiB > gpu-bin/bundle.tar.xz
rm -r "$stage"
cp /usr/share/datasets/fashion-mnist/*-ubyte.gz data/fashion-mnist/
du -sh gpu-bin data/fashion-mnist
echo "the device tool carries at most 64 MiB in all"
