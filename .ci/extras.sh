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
# (server: checked below in the venv the README's own install command makes)
for extra in core cli postgres agents mcp otel; do
  venv=$out/venv-$extra
  [ -d "$venv" ] || python3 -m venv "$venv"
  spec=$wheel
  [ "$extra" = core ] || spec="cueflow[$extra] @ file://$wheel"
  if ! "$venv/bin/pip" install -q --no-compile "$spec" >"$out/$extra.log" 2>&1; then
    echo "extras: cueflow[$extra] does not install:" >&2; cat "$out/$extra.log" >&2; failed=1; continue
  fi
  # outside the checkout, so that the installed package is the one imported
  (cd "$out" && "$venv/bin/python" "$root/.ci/extras_smoke.py" "$extra") || {
    echo "extras: cueflow[$extra]'s smoke test failed" >&2; failed=1; }
  du -sm "$venv" | awk -v e="$extra" '{printf "extras: cueflow[%s] venv %s MB\n", e, $1}'
done
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
