#!/usr/bin/env bash
# Check deploy/aiokes.service with `systemd-analyze verify`; fail on any complaint about it.
#
# Works on a fresh Debian machine as root, without a running systemd: if systemd-analyze (or
# /bin/kill, which ExecReload= runs) is missing, it installs the packages with apt.
#
# verify checks that every Exec*= binary exists and is executable. /usr/local/bin/aiokes is
# not installed on a CI machine, so the unit is checked as a copy in a temporary directory
# whose ExecStart=/AssertFileIsExecutable= point at a stub executable; nothing else changes.
# (A drop-in cannot do this: it can only append ExecStart= lines, and verify reads the
# original line too.) The copy keeps the unit's name, which verify requires.
#
# It also prints `systemd-analyze security --offline=true` (the exposure score a security
# review looks at) and fails when that score rises above $AIOKES_MAX_EXPOSURE (default 2.0).
set -euo pipefail
cd "$(dirname "$0")/.."

unit=deploy/aiokes.service
max_exposure="${AIOKES_MAX_EXPOSURE:-2.0}"

install_missing() {
    local packages=()
    command -v systemd-analyze >/dev/null || packages+=(systemd)
    [ -x /bin/kill ] || packages+=(procps)
    [ "${#packages[@]}" -eq 0 ] && return
    if [ "$(id -u)" -ne 0 ]; then
        echo "systemd-verify: needs ${packages[*]}; run as root to install them" >&2
        exit 1
    fi
    echo "systemd-verify: installing ${packages[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
}

install_missing

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '#!/bin/sh\nexit 0\n' >"$work/aiokes"
chmod 0755 "$work/aiokes"
sed "s#/usr/local/bin/aiokes#$work/aiokes#g" "$unit" >"$work/aiokes.service"
grep -q "^ExecStart=$work/aiokes " "$work/aiokes.service" || {
    echo "systemd-verify: $unit has no ExecStart=/usr/local/bin/aiokes line to check" >&2
    exit 1
}

# --man=no: Documentation= pages are not installed here. --recursive-errors=no: judge this
# unit only, not the distribution's units it is ordered after.
status=0
output="$(systemd-analyze verify --man=no --recursive-errors=no "$work/aiokes.service" 2>&1)" \
    || status=$?
if [ "$status" -ne 0 ] || [ -n "$output" ]; then
    echo "systemd-verify: $unit has problems (exit $status):" >&2
    printf '%s\n' "${output//$work/deploy}" >&2
    exit 1
fi
echo "systemd-verify: $unit: systemd-analyze verify found nothing to complain about"

security="$(systemd-analyze security --offline=true --no-pager "$work/aiokes.service" 2>&1)" \
    || true  # the score below decides
score="$(printf '%s\n' "$security" | sed -n 's/.*Overall exposure level for aiokes.service: \([0-9.]*\).*/\1/p')"
if [ -z "$score" ]; then
    echo "systemd-verify: systemd-analyze security gave no exposure score:" >&2
    printf '%s\n' "$security" >&2
    exit 1
fi
printf '%s\n' "$security" | grep -v '^✓' || true
if awk -v score="$score" -v max="$max_exposure" 'BEGIN { exit !(score > max) }'; then
    echo "systemd-verify: exposure $score is above $max_exposure" >&2
    exit 1
fi
