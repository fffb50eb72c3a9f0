#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install the pinned stack.
#
#   bash scripts/setup_env.sh            # idempotent; a second run takes seconds
#
# Environment:
#   VENV             where the environment lives (default: .venv in the repo)
#   PYTHON           interpreter used to create it (default: python3.11, else python3)
#   MMCV_WHEEL_DIR   a directory holding a prebuilt mmcv 2.1.0 wheel with ops. If unset,
#                    PIP_FIND_LINKS is tried, then ../shared/wheels beside the checkout (where
#                    this project's machines keep one); with no wheel anywhere mmcv is built
#                    from source with its ops (about 15 minutes on 2 cores).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"

log() { printf '[setup_env] %s\n' "$*"; }

stamp_inputs() { cat requirements.txt requirements/*.txt setup.cfg setup.py scripts/setup_env.sh | sha256sum | cut -c1-16; }
STAMP="$VENV/.mmifr-setup-$(stamp_inputs)"

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating virtual environment in $VENV with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
# Some machines configure find-links folders that do not exist; pip warns
# about each on every call. Those warnings say nothing about this install.
pip_install() {
  "${PIP[@]}" install "$@" 2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)
}

if [[ -f "$STAMP" ]] && "$PY" -c 'import mmcv._ext, mmdet, mmifr' 2>/dev/null; then
  log "environment is up to date ($VENV)"
  exit 0
fi

# Never let a dependency replace the CPU torch with a CUDA build.
export PIP_CONSTRAINT="$ROOT/requirements/constraints.txt"

log "build tools"
pip_install -q -r requirements/build.txt
log "torch (pinned CPU wheel)"
pip_install -q -r requirements/torch.txt

if "$PY" -c 'import mmcv, mmcv._ext; assert mmcv.__version__ == "2.1.0"' 2>/dev/null; then
  log "mmcv 2.1.0 with ops already installed"
else
  FIND_LINKS=()
  for dir in "${MMCV_WHEEL_DIR:-}" "${PIP_FIND_LINKS:-}" "$ROOT/../shared/wheels"; do
    if [[ -n "$dir" ]] && compgen -G "$dir/mmcv-2.1.0-*.whl" >/dev/null; then
      log "mmcv from the wheel directory $dir"
      FIND_LINKS=(--find-links "$dir")
      break
    fi
  done
  if [[ ${#FIND_LINKS[@]} -eq 0 ]]; then
    log "no mmcv wheel found: building mmcv 2.1.0 with ops from source (~15 min on 2 cores)"
  fi
  # --no-build-isolation: mmcv's setup.py imports torch and pkg_resources from this env.
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    pip_install -q --no-build-isolation "${FIND_LINKS[@]}" -r requirements/mmcv.txt
fi

log "mmengine, mmdet, test tools"
pip_install -q -r requirements/runtime.txt -r requirements/tests.txt
log "mmifr (editable)"
pip_install -q --no-deps --no-build-isolation -e .

"$PY" -c 'import mmcv._ext, mmdet, mmifr; print("[setup_env] ok: mmcv", __import__("mmcv").__version__, "mmdet", mmdet.__version__, "mmifr", mmifr.__version__)'
rm -f "$VENV"/.mmifr-setup-*
touch "$STAMP"
