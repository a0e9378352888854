#!/usr/bin/env bash
# Builds pwsync-filter.dll (x64, x86), inspects both binaries, runs the wine harness (main,
# stress, bench) for every architecture wine can execute here, replays the captured frames
# through the dc-agent decoder, prints a summary, and exits non-zero on any failure.
#   PWSYNC_BENCH=0   skip the latency bench
# Wall time on a 2-core machine: about 40 s with wine already set up (see README).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lsa="$(cd "$here/.." && pwd)"
repo="$(cd "$lsa/.." && pwd)"
state="$repo/.state/lsa-filter"
t0=$(date +%s)
pass=0
fail=0
skip=0
failures=()

ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); failures+=("$*"); echo "not ok - $*"; }
skipped() { skip=$((skip + 1)); echo "skip - $*"; }

export WINEPREFIX="${WINEPREFIX:-$repo/.state/wine}"
export WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY
cleanup() { wineserver -k >/dev/null 2>&1 || true; }
trap cleanup EXIT

if ! command -v x86_64-w64-mingw32-gcc >/dev/null || ! command -v wine >/dev/null || [ ! -f "$WINEPREFIX/system.reg" ]; then
  bash "$lsa/scripts/install-toolchain.sh" || { echo "toolchain install failed"; exit 1; }
fi
wineserver -k >/dev/null 2>&1 || true

echo "# build"
mkdir -p "$repo/.state"
if make -C "$lsa" -s clean all >"$state.build.log" 2>&1; then
  ok "build x64 and x86 with -Wall -Wextra -Werror"
else
  cat "$state.build.log"
  bad "build"
  echo "lsa-filter: $pass passed, $fail failed"
  exit 1
fi

echo "# binary checks"
for arch in x64 x86; do
  dll="$lsa/build/$arch/pwsync-filter.dll"
  dump="$(x86_64-w64-mingw32-objdump -p "$dll")"
  exports="$(sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' <<<"$dump" | awk '/\[/{print $NF}' | grep -v Table | sort | tr '\n' ' ')"
  [ "$exports" = "InitializeChangeNotify PasswordChangeNotify PasswordFilter " ] \
    && ok "$arch exports exactly InitializeChangeNotify, PasswordChangeNotify, PasswordFilter (undecorated)" \
    || bad "$arch exports: '$exports'"
  imports="$(grep 'DLL Name:' <<<"$dump" | awk '{print toupper($3)}' | sort -u | tr '\n' ' ')"
  [ "$imports" = "ADVAPI32.DLL CRYPT32.DLL KERNEL32.DLL " ] \
    && ok "$arch imports only ADVAPI32, CRYPT32, KERNEL32 (no msvcrt/ucrt/libgcc/winpthread DLL)" \
    || bad "$arch unexpected imports: '$imports'"
  want_machine=$([ "$arch" = x64 ] && echo "x86-64" || echo "i386")
  x86_64-w64-mingw32-objdump -f "$dll" | grep -q "pei-$want_machine" && ok "$arch is a pei-$want_machine image" || bad "$arch machine type"
  grep -q "DYNAMIC_BASE" <<<"$dump" && grep -q "NX_COMPAT" <<<"$dump" && ok "$arch has ASLR and DEP flags" || bad "$arch ASLR/DEP flags"
  avx=$(x86_64-w64-mingw32-objdump -d "$dll" | grep -cE '%[yz]mm[0-9]' || true)
  [ "$avx" = 0 ] && ok "$arch uses no AVX/AVX-512 registers (no CPU-specific code)" || bad "$arch has $avx AVX instructions"
  x86_64-w64-mingw32-strings -el "$dll" | grep -q "pwsync password change notification package" && ok "$arch carries its version resource" || bad "$arch version resource"
  x86_64-w64-mingw32-strings -el "$dll" | grep -q "pwsync password filter %1 loaded" && ok "$arch carries its event message table" || bad "$arch message table"
done

run_harness() { # arch mode -> exit code; stdout to $state/$arch.$mode.out, wine stderr to .err
  local arch=$1 mode=$2 W
  W() { echo "Z:${1//\//\\}"; }
  WINEDEBUG="-all,+eventlog" timeout 300 wine "$lsa/build/$arch/harness.exe" \
    "$(W "$lsa/build/$arch/pwsync-filter.dll")" "$(W "$lsa/test/vectors")" "$(W "$state/$arch")" \
    "$(W "$state/captured")" "$arch" "$mode" >"$state/$arch.$mode.out" 2>"$state/$arch.$mode.err"
  local rc=$?
  sed -i 's/\r$//' "$state/$arch.$mode.out" "$state/$arch.$mode.err" # wine's console writes CRLF
  return $rc
}

rm -rf "$state"
mkdir -p "$state/captured"
for arch in x64 x86; do
  echo "# wine $arch"
  if [ "$arch" = x86 ] && ! dpkg-query -W -f='${Status}' wine32:i386 2>/dev/null | grep -q 'install ok installed'; then
    why=$(cat "$repo/.state/wine32-skipped" 2>/dev/null || echo "wine32:i386 is not installed")
    skipped "x86 harness NOT RUN: $why"
    echo "SKIPPED: x86 DLL not executed under wine: $why" >>"$repo/.state/skipped.txt"
    continue
  fi
  # Spool folders wine can only be shown from the Unix side (it derives owner and link-ness from
  # it): one owned by another account, one that is a link to an otherwise perfect folder.
  mkdir -p "$state/$arch/foreign-owned" "$state/$arch/world-readable" "$state/$arch/trusted-target"
  chown nobody "$state/$arch/foreign-owned" && chmod 700 "$state/$arch/foreign-owned" "$state/$arch/trusted-target"
  chmod 755 "$state/$arch/world-readable"
  ln -sfn "$state/$arch/trusted-target" "$state/$arch/spool-link"
  modes=(main stress bound slowdisk link)
  [ "${PWSYNC_BENCH:-1}" = 1 ] && modes+=(bench)
  for mode in "${modes[@]}"; do
    ts=$(date +%s)
    run_harness "$arch" "$mode"
    rc=$?
    secs=$(($(date +%s) - ts))
    out="$state/$arch.$mode.out"
    grep -E '^(ok|not ok) - |^bench ' "$out" | sed "s/^/  [$arch $mode] /"
    summary=$(grep -E '^harness .*passed, [0-9]+ failed$' "$out" || true)
    if [ $rc -eq 0 ] && [ -n "$summary" ]; then ok "$arch $mode harness ($summary) in ${secs}s"; else bad "$arch $mode harness exited $rc ($summary) after ${secs}s"; fi
  done
  err="$state/$arch.main.err"
  for msg in "pwsync-test-" "odd byte Length" "Length greater than MaximumLength" "longer than 256 characters" \
             "null UNICODE_STRING" "null buffer with non-zero Length" "pipe not found"; do
    grep -q "ReportEventW L\".*$msg" "$err" && ok "$arch event log got \"$msg\"" || bad "$arch event log lacks \"$msg\""
  done
  # Canary accounts are "canary.*" and canary passwords "CANARY-*" (see make-vectors.py, harness stress).
  transient=$(grep -h 'ReportEventW L"pipe I/O failed"' "$state"/$arch.*.err | wc -l)
  echo "  [$arch] pipe I/O failures that outlived the retry (frame spooled, not lost): $transient"
  if grep -qE 'canary\.|CANARY-' "$state"/$arch.*.err "$state"/$arch.*.out; then bad "$arch: a canary string reached the event log or output"
  else ok "$arch: no canary (account or password) text in any event log entry or output"; fi
done

echo "# replay captured frames into the dc-agent decoder"
n_captured=$(ls "$state/captured" 2>/dev/null | wc -l)
if [ "$n_captured" -gt 0 ] && [ -d "$repo/node_modules/vitest" ]; then
  if (cd "$repo" && NO_COLOR=1 timeout 300 npx vitest run dc-agent/src/frame >"$state/vitest.out" 2>&1) \
     && ! grep -qE 'Tests .*skipped' "$state/vitest.out"; then
    ok "dc-agent decoder: $(grep -E 'Tests +[0-9]+ passed' "$state/vitest.out" | xargs), incl. $n_captured frames captured from the C filter"
  else
    tail -30 "$state/vitest.out"
    bad "dc-agent decoder tests on captured frames"
  fi
else
  skipped "no captured frames or no node_modules: decoder replay not run"
fi

wineserver -k >/dev/null 2>&1 || true
echo
echo "# summary ($(($(date +%s) - t0)) s)"
grep -h '^bench ' "$state"/*.bench.out 2>/dev/null || true
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "lsa-filter: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
