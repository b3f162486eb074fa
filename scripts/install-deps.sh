#!/usr/bin/env bash
# Installs the Debian 12 packages resgo needs, only those that are missing.
#   scripts/install-deps.sh        what resgo and its demo need
#   scripts/install-deps.sh test   that, and what the tests compare against
#
#   libdnnl-dev            oneDNN 2.6, the fast backend (cgo)
#   libjpeg62-turbo-dev    libjpeg-turbo's libjpeg, the JPEG decoder PIL uses: JPEGs decoded as PIL does (cgo)
#   dataset-fashion-mnist  the demo's data set (/usr/share/datasets/fashion-mnist)
#   python3-torch, python3-torchvision
#                          the reference implementation the parity tests compare against
#   libopenblas0-pthread   a fast BLAS for PyTorch's side of the speed comparisons
#   libjpeg-turbo-progs    cjpeg: the JPEG tests' files PIL cannot write (arithmetic coding, 4:4:0, 4:1:1)
#   openmpi-bin, libopenmpi-dev
#                          Open MPI's mpirun and C library: the data-parallel training tests (2 ranks on loopback)
set -euo pipefail
pkgs=(libdnnl-dev libjpeg62-turbo-dev dataset-fashion-mnist)
if [ "${1:-}" = test ]; then
  pkgs+=(python3-torch python3-torchvision libopenblas0-pthread libjpeg-turbo-progs openmpi-bin libopenmpi-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
