#!/usr/bin/env bash
# Installs the system packages tlora builds against (libzstd-dev, pkg-config) when they are missing.
set -euo pipefail
if pkg-config --exists libzstd 2>/dev/null && [ -f /usr/include/zstd.h ]; then
  exit 0
fi
echo "installing libzstd-dev and pkg-config..." >&2
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq libzstd-dev pkg-config >/dev/null
