# Sourced by scripts/dev and scripts/test: make .venv with Python 3.11+ and install the project
# (editable) with the extras given as arguments. Re-installs only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# The repository has a folder named `operator/` (installed as `tenrusl_operator`). `python -m ...`
# run from here would put this folder first on sys.path and shadow the standard library's
# `operator` module; safe-path mode (Python 3.11+) keeps the current directory off sys.path.
export PYTHONSAFEPATH=1
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "TenRusl needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
extras=$(IFS=,; echo "$*")
stamp=".venv/.tenrusl-installed-$(sha256sum pyproject.toml | cut -c1-16)-${extras//,/-}"
if [ ! -e "$stamp" ]; then
    echo "installing tenrusl[$extras] into .venv ..." >&2
    .venv/bin/pip install --quiet --disable-pip-version-check -e ".[$extras]"
    rm -f .venv/.tenrusl-installed-*
    touch "$stamp"
fi
