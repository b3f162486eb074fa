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
#   python3-onnx           onnx.checker (full check) on the models resgo export --format onnx writes
#   python3-numpy          numpy.load of the .npy files resgo embed writes
#   chromium               headless browser: the test of resgo serve's web page (serve/page_test.go)
#   openmpi-bin, libopenmpi-dev
#                          Open MPI's mpirun and C library: the data-parallel training tests (2 ranks on loopback)
#   npm                    (when there is no npm command) installs npm's onnxruntime-node@1.30.0 in
#                          /opt/resgo/ort: its libonnxruntime.so runs the exported models in the onnx tests
set -euo pipefail
pkgs=(libdnnl-dev libjpeg62-turbo-dev dataset-fashion-mnist)
if [ "${1:-}" = test ]; then
  pkgs+=(python3-torch python3-torchvision libopenblas0-pthread libjpeg-turbo-progs python3-onnx python3-numpy chromium openmpi-bin libopenmpi-dev)
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
# ONNX Runtime for the onnx tests: npm's onnxruntime-node ships
# libonnxruntime.so (ONNXRUNTIME_NODE_INSTALL=skip: no CUDA download).
install_ort() {
  [ "${1:-}" = test ] || return 0
  ls /opt/resgo/ort/node_modules/onnxruntime-node/bin/napi-v*/linux/x64/libonnxruntime.so* >/dev/null 2>&1 && return 0
  if ! command -v npm >/dev/null; then
    echo "installing: npm"
    $sudo apt-get update -q
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends npm
  fi
  echo "installing: onnxruntime-node@1.30.0 in /opt/resgo/ort"
  $sudo mkdir -p /opt/resgo/ort
  $sudo env ONNXRUNTIME_NODE_INSTALL=skip npm install --silent --no-audit --no-fund --prefix /opt/resgo/ort onnxruntime-node@1.30.0
}
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  install_ort "${1:-}"
  exit 0
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
install_ort "${1:-}"
