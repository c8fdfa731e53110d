#!/usr/bin/env bash
# Install check: build the wheel, install it into a fresh virtual environment (runtime dependencies
# only), and use it from an empty folder as a new user would. Used by `make check-install` and
# tests/test_install.py. Prints one "ok: ..." line per check; exits non-zero at the first failure.
#   PYTHON   interpreter for the fresh venv (default python3)
#   WORK     scratch folder (default: a new temporary folder, removed at the end)
set -euo pipefail

PYTHON=${PYTHON:-python3}
REPO=$(cd "$(dirname "$0")/.." && pwd)
OWN_WORK=0
if [ -z "${WORK:-}" ]; then WORK=$(mktemp -d); OWN_WORK=1; fi
cleanup() { if [ "$OWN_WORK" = 1 ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT
quiet() { grep -v 'is ignored: it is neither a file nor a directory' || true; }
t0=$(date +%s)

# 1. the wheel, built from the source tree
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/dist" "$REPO" 2>&1 | quiet
WHEEL=$(ls "$WORK"/dist/llmsizing-*.whl)
echo "ok: built $(basename "$WHEEL")"

# 2. a fresh venv with the wheel and its runtime dependencies only
"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet "$WHEEL" 2>&1 | quiet
echo "ok: installed into a fresh venv ($(( $(date +%s) - t0 )) s so far)"
BIN="$WORK/venv/bin"

# 3. from an empty folder, outside the repository
mkdir -p "$WORK/empty" && cd "$WORK/empty"
if "$BIN/python" -c "import torch" 2>/dev/null; then echo "FAIL: torch is importable"; exit 1; fi
echo "ok: import torch fails (runtime dependencies only)"
"$BIN/python" -m llmsizing --version
"$BIN/llmsizing" completion bash > /dev/null
echo "ok: python -m llmsizing --version; llmsizing completion bash"

cat > s.yaml <<'EOF'
kind: serving
scenario_name: install-check
customer: Install check
title: A 8B chat assistant on one H100
models: [llama-3.1-8b]
gpus: [h100-80gb]
users: 8
context_tokens: 8192
context_sweep: [4096, 8192]
EOF
"$BIN/llmsizing" run s.yaml
test -s reports/install-check/report.pdf
head -c 5 reports/install-check/report.pdf | grep -q '%PDF-'
echo "ok: llmsizing run s.yaml wrote reports/install-check/report.pdf ($(stat -c %s reports/install-check/report.pdf) bytes)"

# 4. a Hugging Face id read offline from a local cache (the layout huggingface_hub writes)
REV=0123456789abcdef0123456789abcdef01234567
SNAP="$WORK/hf/hub/models--acme--tiny-llama/snapshots/$REV"
mkdir -p "$SNAP" "$WORK/hf/hub/models--acme--tiny-llama/refs"
cp "$REPO/lib/llmsizing/validation/configs/meta-llama-3-8b.json" "$SNAP/config.json"
printf '%s' "$REV" > "$WORK/hf/hub/models--acme--tiny-llama/refs/main"
HF_HOME="$WORK/hf" HF_HUB_OFFLINE=1 "$BIN/llmsizing" model acme/tiny-llama --json > model.json
grep -q "\"revision\": \"$REV\"" model.json
grep -q '"params_total": 8030261248' model.json
echo "ok: HF_HUB_OFFLINE=1 llmsizing model acme/tiny-llama read the cached config (revision $REV)"

# 5. the data that ships in the package: the audit table and the validation set
"$BIN/llmsizing" audit --json > audit.json
"$BIN/llmsizing" validate --summary-only > validate.txt
"$BIN/python" -c "from llmsizing import serve; print(serve('llama-3.1-8b', 'h100-80gb', users=8).gpus)" > api.txt
echo "ok: audit, validate and the Python API from the installed package"
echo "ok: all checks passed in $(( $(date +%s) - t0 )) s"
