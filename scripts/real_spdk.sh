#!/usr/bin/env bash
# Finds a real SPDK (spdk_tgt and spdk_dd) for the real-target tests and proves it runs here.
#
#   scripts/real_spdk.sh          prints the path of spdk_tgt, then of spdk_dd (a line each), exits 0,
#                                 or says why there is no usable real target and exits:
#                                   3  none found (no SPDK_TGT, no ../shared/spdk next to the checkout)
#                                   4  found, but it cannot run on this machine (the reason is printed)
#
# SPDK_TGT / SPDK_DD name the binaries; otherwise ../shared/spdk/bin next to the checkout is used,
# after its ensure-runtime installed the Debian libraries the binaries link against. Every library
# is checked again here, and the usual ones are installed when one is still missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED_SPDK="${SHARED_SPDK:-$ROOT/../shared/spdk}"

tgt="${SPDK_TGT:-}"
dd_bin="${SPDK_DD:-}"
if [ -z "$tgt" ] && [ -x "$SHARED_SPDK/bin/spdk_tgt" ]; then
    if [ -x "$SHARED_SPDK/ensure-runtime" ]; then
        "$SHARED_SPDK/ensure-runtime" >/dev/null || true
    fi
    tgt="$SHARED_SPDK/bin/spdk_tgt"
    dd_bin="${dd_bin:-$SHARED_SPDK/bin/spdk_dd}"
fi
if [ -z "$tgt" ]; then
    echo "real_spdk: no real SPDK: set SPDK_TGT (and SPDK_DD) or put one in $SHARED_SPDK/bin" >&2
    exit 3
fi
dd_bin="${dd_bin:-$(dirname "$tgt")/spdk_dd}"
for binary in "$tgt" "$dd_bin"; do
    if [ ! -x "$binary" ]; then
        echo "real_spdk: $binary is not executable" >&2
        exit 3
    fi
done

# ldd names a missing library "not found"; no grep -q here: it would end ldd early (SIGPIPE).
missing_libraries() { ldd "$tgt" "$dd_bin" 2>/dev/null | grep "not found" || true; }
if [ -n "$(missing_libraries)" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    packages="libaio1 libnuma1 libkeyutils1 libssl3 libuuid1"
    # shellcheck disable=SC2086
    { apt-get install -y -q $packages || { apt-get update -q && apt-get install -y -q $packages; }; } >&2
fi
if [ -n "$(missing_libraries)" ]; then
    echo "real_spdk: libraries of the SPDK binaries are missing:" >&2
    missing_libraries >&2
    exit 4
fi

# A short start proves the binary runs on this CPU: a build for other CPU features stops in DPDK's
# start-up ("unsupported cpu type"), which no test could tell from a broken collection.
probe_dir="$(mktemp -d /tmp/spdk-probe.XXXXXX)"
trap 'kill -9 "${pid:-0}" 2>/dev/null || true; rm -rf "$probe_dir"' EXIT
"$tgt" -r "$probe_dir/s.sock" -i -1 -m 0x1 --no-huge -s 2048 --no-pci --disable-cpumask-locks \
    >"$probe_dir/log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
    if [ -S "$probe_dir/s.sock" ] || ! kill -0 "$pid" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
if [ ! -S "$probe_dir/s.sock" ]; then
    echo "real_spdk: $tgt does not start on this machine:" >&2
    grep -E "ERROR|does not support|unsupported" "$probe_dir/log" | head -5 >&2 || tail -5 "$probe_dir/log" >&2
    exit 4
fi
kill -INT "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
printf "%s\n%s\n" "$tgt" "$dd_bin"
