# Shared environment for BLADE-FL scripts (sourced, not run).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/blade-fl/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"
# rustup's cargo first (a fresh rustup install puts it here).
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
# The target dir lives outside the workspace: tell the wasm builder where Cargo.lock is.
export WASM_BUILD_WORKSPACE_HINT="${WASM_BUILD_WORKSPACE_HINT:-$PWD}"
