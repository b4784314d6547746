#!/usr/bin/env bash
# Each extra of cueflow installs in a fresh venv and its import smoke test passes
# (.ci/extras_smoke.py); then the README's shell blocks run in a fresh checkout and venv made with
# exactly the README's install command (.ci/readme_blocks.py). .ci/run starts this in the
# background beside pytest. One wheel is built and installed everywhere (no build per venv); pip
# takes every package from its cache; --no-compile skips byte-compiling what the smoke never runs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/build/extras
rm -rf "$out" && mkdir -p "$out"
started=$(date +%s)

python3 -m venv "$out/venv-core"
"$out/venv-core/bin/pip" wheel -q --no-deps -w "$out/dist" . >"$out/wheel.log" 2>&1 \
  || { cat "$out/wheel.log" >&2; exit 1; }
wheel=$(ls "$out"/dist/cueflow-*.whl)

failed=0
# core: a fresh venv. Each extra: a copy of the core's venv (made before any smoke test ran, its
# scripts pointed at the copy) plus `pip install cueflow[EXTRA]`, which adds just that extra's
# packages: the same set a fresh venv would hold, at a fraction of the unpacking.
"$out/venv-core/bin/pip" install -q --no-compile "$wheel" >"$out/core.log" 2>&1 \
  || { echo "extras: cueflow does not install:" >&2; cat "$out/core.log" >&2; exit 1; }
cp -a "$out/venv-core" "$out/pristine-core"
for extra in core cli postgres agents mcp otel; do
  venv=$out/venv-$extra
  if [ "$extra" != core ]; then
    cp -a "$out/pristine-core" "$venv"
    sed -i "1s|^#!$out/venv-core/|#!$venv/|" "$venv"/bin/*
    sed -i "s|$out/venv-core|$venv|g" "$venv/pyvenv.cfg" "$venv"/bin/activate*
    if ! "$venv/bin/pip" install -q --no-compile "cueflow[$extra] @ file://$wheel" \
        >"$out/$extra.log" 2>&1; then
      echo "extras: cueflow[$extra] does not install:" >&2; cat "$out/$extra.log" >&2
      failed=1; continue
    fi
  fi
  # outside the checkout, so that the installed package is the one imported
  (cd "$out" && "$venv/bin/python" "$root/.ci/extras_smoke.py" "$extra") || {
    echo "extras: cueflow[$extra]'s smoke test failed" >&2; failed=1; }
  du -sm "$venv" | awk -v e="$extra" '{printf "extras: cueflow[%s] venv %s MB\n", e, $1}'
done
rm -rf "$out/pristine-core"
echo "extras: $(( $(date +%s) - started )) s"

# The README's shell blocks, after exactly its install (cueflow[server]), in a fresh checkout
python3 .ci/readme_blocks.py --work "$out/readme" || failed=1
readme_venv=$out/readme/.venv
if [ -x "$readme_venv/bin/python" ]; then
  (cd "$out" && "$readme_venv/bin/python" "$root/.ci/extras_smoke.py" server) || {
    echo "extras: cueflow[server]'s smoke test failed" >&2; failed=1; }
fi
echo "extras and README: $(( $(date +%s) - started )) s"
exit $failed
