#!/usr/bin/env bash
# Installs every Debian package Warden's build, tests and demo need.
# Idempotent: runs apt-get update/install only when something is missing.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake pkg-config clang-format git
  # libraries
  libgrpc-dev libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler
  libssl-dev openssl libsystemd-dev libsqlite3-dev sqlite3 libpq-dev
  libjansson-dev libcmocka-dev libconfuse-dev libmicrohttpd-dev
  # tests: independent gRPC client, other uids, PostgreSQL
  python3 python3-grpcio python3-protobuf python3-cryptography util-linux procps iproute2 systemd
  postgresql
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
