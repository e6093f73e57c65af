#!/usr/bin/env bash
# Packs what `scripts/device-run.sh` needs on a lent GPU machine (no Bun, no registry, at most
# 64 MiB carried per call) into the ignored folder .device-kit/: the Bun binary, the runtime
# dependencies (Dawn's .so included, node-llama-cpp and dev tools left out), stories15M-q8_0
# and Vulkan's loader as Debian packages. Run it here, then carry `.device-kit`:
#
#   bash scripts/device-kit.sh
#   device run: bash scripts/device-run.sh        (carry: [".device-kit"])
set -euo pipefail
cd "$(dirname "$0")/.."
kit=.device-kit
model=../shared/models/stories15M/stories15M-q8_0.gguf
rm -rf "$kit" && mkdir -p "$kit/debs"

xz -T0 -9 -c node_modules/bun/bin/bun.exe > "$kit/bun.xz"

# runtime dependencies only; the Bun binary travels on its own, llama.cpp's reference stays here
npm ls --omit=dev --parseable --all 2>/dev/null | sed "s|^$PWD/||" | grep '^node_modules/' |
  grep -Ev '^node_modules/(bun|@oven/.*|typescript|bun-types|@types/.*|@webgpu/types|node-llama-cpp|@node-llama-cpp/.*)$' |
  sort -u > "$kit/packages.txt"
tar -c --exclude='node_modules/*/node_modules/@types' -T "$kit/packages.txt" | xz -T0 -9 > "$kit/node_modules.tar.xz"

xz -T0 -9 -c "$model" > "$kit/stories15M-q8_0.gguf.xz"

# Vulkan's loader (Dawn dlopens libvulkan.so.1); the NVIDIA driver there brings its ICD
lists=$(mktemp -d)
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
mkdir -p "$lists/partial"
if apt-get "${o[@]}" update -qq && (cd "$kit/debs" && apt-get "${o[@]}" download -qq libvulkan1); then :; else
  echo "warning: could not download libvulkan1; the device machine must have its own Vulkan loader" >&2
fi
rm -rf "$lists"
du -ch "$kit"/*.xz "$kit"/debs/* | sort -h | tail -6
