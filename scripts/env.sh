# Shared environment for BLADE-FL scripts (sourced, not run).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/blade-fl/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"
# rustup's cargo first (a fresh rustup install puts it here).
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
# The target dir lives outside the workspace: tell the wasm builder where Cargo.lock is.
export WASM_BUILD_WORKSPACE_HINT="${WASM_BUILD_WORKSPACE_HINT:-$PWD}"
# libtorch for the trainer's `torch` feature: tch links the torch of this venv.
export BLADE_VENV="${BLADE_VENV:-$HOME/.cache/blade-fl/venv}"
if [ -x "$BLADE_VENV/bin/python" ]; then
	export LIBTORCH_USE_PYTORCH=1
	export PATH="$BLADE_VENV/bin:$PATH"
	torch_lib=$("$BLADE_VENV/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null || true)
	if [ -n "$torch_lib" ]; then
		export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	fi
fi
