#!/usr/bin/env bash
# Installs what the GPU path and the browser tests need on Debian bookworm (run as root):
# Mesa's software Vulkan driver (lavapipe) from bookworm-backports, because bookworm's own Mesa
# is too old for Dawn, plus Vulkan loader and Chromium for headless WebGPU tests.
# Idempotent: a second run only checks.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "setup-system: run as root (sudo $0)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Reuse the mirror the machine already uses for bookworm, so no package host is hard-coded here.
mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1=="deb" && $3 ~ /^bookworm/ {print $2; exit}' /etc/apt/sources.list)
fi
if [ -z "$mirror" ]; then
  echo "setup-system: no Debian mirror found in the apt sources" >&2
  exit 1
fi

backports=/etc/apt/sources.list.d/valar-bookworm-backports.sources
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  cat > "$backports" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

apt-get update -qq
apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
apt-get install -y -qq chromium >/dev/null

echo "setup-system: lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers), chromium $(dpkg-query -W -f='${Version}' chromium)"
