#!/usr/bin/env bash
# On a lent GPU machine (see scripts/device-kit.sh): unpacks .device-kit and runs
# bench/throughput.ts there on our server alone (no llama.cpp), writing the log to $OUT.
# Extra arguments go to the bench (e.g. `-- --max-running 128`); BENCH_LEVELS passes through.
set -euo pipefail
cd "$(dirname "$0")/.."
kit=.device-kit
out=${OUT:-/tmp/valar-device-out}
mkdir -p "$out" /tmp/valar-bin
export PATH=$PATH:/usr/sbin:/sbin

# xz may be absent there; python3's lzma is not
unxz_to() { if command -v xz >/dev/null; then xz -dc "$1"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), sys.stdout.buffer)' "$1"; fi; }

if ! ldconfig -p | grep 'libvulkan.so.1 ' >/dev/null; then  # not -q: an early exit fails the pipe
  for f in "$kit"/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=$icd
fi

[ -x /tmp/valar-bin/bun ] || { unxz_to "$kit/bun.xz" > /tmp/valar-bin/bun; chmod +x /tmp/valar-bin/bun; }
[ -d node_modules/elysia ] || unxz_to "$kit/node_modules.tar.xz" | tar -x
model=/tmp/stories15M-q8_0.gguf
[ -f "$model" ] || unxz_to "$kit/stories15M-q8_0.gguf.xz" > "$model"
export PATH=/tmp/valar-bin:$PATH

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv 2>&1 || true; } | tee "$out/gpu.txt"
bun --version
BENCH_THREADS=none BENCH_MODEL=$model bun bench/throughput.ts "$@" 2>&1 | tee "$out/throughput.log"
