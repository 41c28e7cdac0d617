#!/usr/bin/env bash
# A multi-host test topology on one machine: every storage node is its own "host", an sshd on its
# own loopback address inside its own mount namespace, reached by real SSH (root, one key).
#
#   scripts/multihost.sh up                start every node that is not up, wait until each takes a key
#                                          login, print a line per node (nodes already up are left alone)
#   scripts/multihost.sh down              kill every process in each node's namespace, then its sshd
#                                          (quiet and successful when nothing is up)
#   scripts/multihost.sh status            a line per node: up/down, address, sshd pid
#   scripts/multihost.sh ssh NODE [CMD]    run CMD (or a shell) on node NODE (node1, or 1)
#
# Node N is nodeN on 127.0.0.(20+N) (all of 127.0.0.0/8 is loopback on Linux: no address to add).
# Its sshd runs in `unshare -m -u` (hostname nodeN), where these are its own:
#   /var/tmp, /run, /dev/shm        empty tmpfs at each `up`, gone at `down` (like a reboot)
#   /var/lib/spdk-storage, /var/log bind mounts of $DIR/nodeN/spdk-storage and $DIR/nodeN/log
#                                   (kept across down/up like a disk; readable from the machine)
# Everything else (the checkout, /tmp, /usr, /root, the venv) is shared, like one OS image on every
# host. A process started through a node's SSH session (a daemonised spdk_tgt) lives in that node's
# namespace: it is not seen at /var/tmp/spdk.sock from another node or from the machine itself.
#
# Environment:
#   SPDK_MULTIHOST_DIR       state directory (default /tmp/spdk-mh; keep it short, Unix socket paths
#                            must stay under 107 bytes): the client key id_ed25519, authorized_keys,
#                            nodeN/ (host key, sshd_config, sshd.log, sshd.pid, spdk-storage/, log/)
#   SPDK_MULTIHOST_NODES     how many nodes (default 3)
#   SPDK_MULTIHOST_SSH_PORT  the SSH port on every node address (default 22)
#
# `up` installs openssh-server with apt-get when /usr/sbin/sshd (or the ssh client) is missing,
# without letting the package start a system sshd. Needs root (mounts, port 22). No systemd.
set -euo pipefail

DIR="${SPDK_MULTIHOST_DIR:-/tmp/spdk-mh}"
NODES="${SPDK_MULTIHOST_NODES:-3}"
PORT="${SPDK_MULTIHOST_SSH_PORT:-22}"
SSHD=/usr/sbin/sshd
KEY="$DIR/id_ed25519"
# The node's persistent private directories: mount point -> name of its source under $DIR/nodeN.
BIND_MOUNTS=("/var/lib/spdk-storage:spdk-storage" "/var/log:log")
SSH_OPTS=(-i "$KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
    -o IdentitiesOnly=yes -o ConnectTimeout=3 -o LogLevel=ERROR -p "$PORT")
LOGIN_TIMEOUT=20      # seconds for a new sshd to take a key login
STOP_GRACE=5          # seconds between SIGTERM and SIGKILL in `down`

die() {
    echo "multihost: $*" >&2
    exit 1
}

usage() {
    sed -n '4,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

check_settings() {
    case "$DIR" in
        /*) ;;
        *) die "SPDK_MULTIHOST_DIR must be an absolute path (got $DIR)" ;;
    esac
    case "$DIR/" in
        /var/tmp/* | /run/* | /var/run/* | /dev/shm/* | /var/log/* | /var/lib/spdk-storage/*)
            die "SPDK_MULTIHOST_DIR ($DIR) must not be under a directory that is private per node" ;;
    esac
    [ "${#DIR}" -le 60 ] || die "SPDK_MULTIHOST_DIR is too long (${#DIR} > 60 characters): socket paths must stay short"
    if ! [[ "$NODES" =~ ^[0-9]+$ ]] || [ "$NODES" -lt 1 ] || [ "$NODES" -gt 200 ]; then
        die "SPDK_MULTIHOST_NODES must be 1 to 200 (got $NODES)"
    fi
    if ! [[ "$PORT" =~ ^[0-9]+$ ]] || [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
        die "SPDK_MULTIHOST_SSH_PORT must be a port number (got $PORT)"
    fi
}

node_addr() { echo "127.0.0.$((20 + $1))"; }
node_dir() { echo "$DIR/node$1"; }

# The node numbers to act on: 1..NODES, plus any nodeN directory left by a run with more nodes.
node_numbers() {
    local n path
    {
        seq 1 "$NODES"
        for path in "$DIR"/node[0-9]*; do
            [ -d "$path" ] || continue
            n="${path##*/node}"
            [[ "$n" =~ ^[0-9]+$ ]] && echo "$n"
        done
    } | sort -n -u
}

# ---- processes and namespaces -------------------------------------------------------------------

own_ns() { readlink /proc/self/ns/mnt; }

# The pid of node N's listening sshd (empty when it does not run): the pid file's process if it is
# still that sshd, else an sshd whose command line names the node's sshd_config (the listener first).
sshd_pid() {
    local ndir pid path found=""
    ndir="$(node_dir "$1")"
    pid="$(cat "$ndir/sshd.pid" 2>/dev/null || true)"
    if [[ "$pid" =~ ^[0-9]+$ ]] && is_node_sshd "$pid" "$ndir"; then
        echo "$pid"
        return 0
    fi
    for path in $(grep -l -a -F "$ndir/sshd_config" /proc/[0-9]*/cmdline 2>/dev/null || true); do
        pid="${path#/proc/}"
        pid="${pid%/cmdline}"
        is_node_sshd "$pid" "$ndir" || continue
        found="${found:-$pid}"
        if grep -q -a -F "[listener]" "$path" 2>/dev/null; then
            found="$pid"
            break
        fi
    done
    [ -z "$found" ] || echo "$found"
}

# Whether pid $1 is an sshd started with -f $2/sshd_config.
is_node_sshd() {
    [ "$(readlink "/proc/$1/exe" 2>/dev/null || true)" = "$SSHD" ] \
        && { tr '\0' ' ' <"/proc/$1/cmdline"; echo; } 2>/dev/null | grep -q -F -- " -f $2/sshd_config "
}

# Pins the mount namespace of process $2 as one of node $1's: opens it (an open namespace keeps
# its number, which the kernel otherwise hands to the next new namespace at once) and keeps it when,
# after the open, the process is still the node's sshd ($3 = sshd) or still sees the node's own
# /var/lib/spdk-storage ($3 = member). Appends it to PINNED_NS and its descriptor to PINNED_FDS.
# Never the machine's own namespace nor PID 1's.
pin_namespace() {
    local ndir pid="$2" fd ns proof=""
    ndir="$(node_dir "$1")"
    { exec {fd}<"/proc/$pid/ns/mnt"; } 2>/dev/null || return 0
    ns="$(readlink "/proc/$$/fd/$fd")"
    if [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$ns" ]; then
        if [ "$3" = sshd ]; then
            is_node_sshd "$pid" "$ndir" && proof=1
        elif [ "$(stat -L -c %d:%i "/proc/$pid/root${BIND_MOUNTS[0]%%:*}" 2>/dev/null)" \
            = "$(stat -L -c %d:%i "$ndir/${BIND_MOUNTS[0]#*:}" 2>/dev/null || echo none)" ]; then
            proof=1
        fi
    fi
    if [ -n "$proof" ] && [ "$ns" != "$(own_ns)" ] && [ "$ns" != "$(readlink /proc/1/ns/mnt 2>/dev/null || true)" ] \
        && [[ " ${PINNED_NS[*]} " != *" $ns "* ]]; then
        PINNED_NS+=("$ns")
        PINNED_FDS+=("$fd")
    else
        exec {fd}<&-
    fi
}

# Pins node $1's namespaces: its sshd's, and the one recorded at `up` (a node whose sshd was
# killed by hand may still have processes there).
pin_node_namespaces() {
    local n="$1" pid recorded
    pid="$(sshd_pid "$n")"
    [ -z "$pid" ] || pin_namespace "$n" "$pid" sshd
    recorded="$(cat "$(node_dir "$n")/mntns" 2>/dev/null || true)"
    [[ "$recorded" =~ ^mnt:\[[0-9]+\]$ ]] || return 0
    for pid in $(pids_in_ns "$recorded"); do
        pin_namespace "$n" "$pid" member
        break
    done
}

# Every pid living in one of the mount namespaces given (zombies have none and are not listed).
pids_in_ns() {
    local ns pattern tests=()
    for ns in "$@"; do
        pattern="${ns//\[/\\[}"
        pattern="${pattern//\]/\\]}"
        if [ ${#tests[@]} -gt 0 ]; then
            tests+=(-o)
        fi
        tests+=(-lname "$pattern")
    done
    [ ${#tests[@]} -gt 0 ] || return 0
    find /proc/[0-9]*/ns -maxdepth 1 -name mnt \( "${tests[@]}" \) 2>/dev/null \
        | sed -n 's|^/proc/\([0-9]*\)/ns/mnt$|\1|p' || true
}

# Sends signal $1 to the pids on stdin but those in the list $2; prints how many it signalled.
signal_pids() {
    local sig="$1" spare=" $2 " pid count=0
    while read -r pid; do
        [[ "$spare" == *" $pid "* ]] && continue
        kill "-$sig" "$pid" 2>/dev/null && count=$((count + 1))
    done
    echo "$count"
}

# Kills every process of the namespaces $2... but the pids in the list $1: SIGTERM to all of them
# at once, SIGKILL to those still there STOP_GRACE seconds later.
kill_namespaces() {
    local spare="$1" deadline
    shift
    [ $# -gt 0 ] || return 0
    [ "$(pids_in_ns "$@" | signal_pids TERM "$spare")" -gt 0 ] || return 0
    deadline=$((SECONDS + STOP_GRACE))
    while [ "$SECONDS" -lt "$deadline" ]; do
        [ "$(pids_in_ns "$@" | signal_pids 0 "$spare")" -gt 0 ] || return 0
        sleep 0.1
    done
    deadline=$((SECONDS + STOP_GRACE))
    while [ "$(pids_in_ns "$@" | signal_pids KILL "$spare")" -gt 0 ]; do
        [ "$SECONDS" -lt "$deadline" ] || die "processes survive SIGKILL: $(pids_in_ns "$@" | tr '\n' ' ')"
        sleep 0.1
    done
}

# Stops the nodes given by number, all at once: every process of their namespaces but the
# listening sshds first (the sessions and what they started), then the sshds and whatever they
# forked in between. A listener outside a namespace that could be pinned is not signalled.
stop_nodes() {
    local n pid fd listeners="" stopped=()
    PINNED_NS=()
    PINNED_FDS=()
    for n in "$@"; do
        pid="$(sshd_pid "$n")"
        listeners="$listeners $pid"
        pin_node_namespaces "$n"
        [ -z "$pid" ] || stopped+=("node$n down (sshd $pid and every process of its namespace stopped)")
    done
    kill_namespaces "$listeners" "${PINNED_NS[@]}"
    kill_namespaces "" "${PINNED_NS[@]}"
    for fd in "${PINNED_FDS[@]}"; do
        exec {fd}<&-
    done
    for n in "$@"; do
        rm -f "$(node_dir "$n")/sshd.pid" "$(node_dir "$n")/mntns"
    done
    [ ${#stopped[@]} -eq 0 ] || printf '%s\n' "${stopped[@]}"
}

# ---- starting a node ----------------------------------------------------------------------------

ensure_openssh() {
    if [ -x "$SSHD" ] && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null; then
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "openssh-server is not installed and only root can install it"
    command -v apt-get >/dev/null || die "no $SSHD and no apt-get to install openssh-server with"
    echo "multihost: installing openssh-server (apt-get)" >&2
    # The package must not start a system sshd (it would hold port 22 on every address):
    # policy-rc.d refuses every service start while it installs.
    local policy=/usr/sbin/policy-rc.d made_policy="" log rc=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        made_policy=1
    fi
    log="$(mktemp)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends openssh-server >"$log" 2>&1; then
        { apt-get update -q && apt-get install -y -q --no-install-recommends openssh-server; } >>"$log" 2>&1 || rc=$?
    fi
    [ -z "$made_policy" ] || rm -f "$policy"
    if [ "$rc" -ne 0 ] || [ ! -x "$SSHD" ]; then
        tail -n 20 "$log" >&2
        rm -f "$log"
        die "installing openssh-server failed"
    fi
    rm -f "$log"
}

ensure_keys() {
    mkdir -p "$DIR"
    chmod 0700 "$DIR"
    if [ ! -f "$KEY" ]; then
        rm -f "$KEY.pub"
        ssh-keygen -q -t ed25519 -N '' -C "spdk-multihost" -f "$KEY"
    fi
    cp "$KEY.pub" "$DIR/authorized_keys"
    chmod 0600 "$DIR/authorized_keys"
}

write_sshd_config() {
    local n="$1" ndir addr
    ndir="$(node_dir "$n")"
    addr="$(node_addr "$n")"
    cat >"$ndir/sshd_config" <<EOF
# node$n of scripts/multihost.sh (written at each \`up\`)
ListenAddress $addr:$PORT
HostKey $ndir/ssh_host_ed25519_key
PidFile $ndir/sshd.pid
AuthorizedKeysFile $DIR/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
# The key file lives under /tmp, which is world-writable.
StrictModes no
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
StreamLocalBindUnlink yes
X11Forwarding no
PrintMotd no
PrintLastLog no
UseDNS no
AcceptEnv LANG LC_*
MaxStartups 64:30:128
MaxSessions 64
Subsystem sftp internal-sftp
LogLevel VERBOSE
EOF
}

# Runs inside the new namespaces (sh): make the node's directories private, then start sshd,
# which daemonises and keeps the namespace alive. $1 node name, $2 node dir, then mount pairs.
# shellcheck disable=SC2016   # expanded by the inner sh
NODE_INIT='
set -eu
name=$1 ndir=$2 sshd=$3
shift 3
echo "$name" >/proc/sys/kernel/hostname
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -m 0755 /run/sshd
mkdir -m 1777 /run/lock
for pair in "$@"; do
    mount --bind "$ndir/${pair#*:}" "${pair%%:*}"
done
"$sshd" -t -f "$ndir/sshd_config"
exec "$sshd" -f "$ndir/sshd_config" -E "$ndir/sshd.log"
'

start_node() {
    local n="$1" ndir addr pid pair started log_start ns
    ndir="$(node_dir "$n")"
    addr="$(node_addr "$n")"
    pid="$(sshd_pid "$n")"
    if [ -n "$pid" ]; then
        echo "node$n up   $addr:$PORT pid $pid (already up)"
        return 0
    fi
    # What a previous run left in the node's namespace goes first (an sshd killed by hand).
    stop_nodes "$n" >/dev/null
    if (exec 3<>"/dev/tcp/$addr/$PORT") 2>/dev/null; then
        die "something else listens on $addr:$PORT (a system sshd on 0.0.0.0:$PORT?): stop it or set SPDK_MULTIHOST_SSH_PORT"
    fi
    mkdir -p "$ndir"
    for pair in "${BIND_MOUNTS[@]}"; do
        mkdir -p "${pair%%:*}" "$ndir/${pair#*:}"
    done
    [ -f "$ndir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "node$n" -f "$ndir/ssh_host_ed25519_key"
    write_sshd_config "$n"
    started=$SECONDS
    log_start=$(($(stat -c %s "$ndir/sshd.log" 2>/dev/null || echo 0) + 1))
    if ! unshare --mount --propagation private --uts -- /bin/sh -c "$NODE_INIT" sh "node$n" "$ndir" "$SSHD" \
        "${BIND_MOUNTS[@]}" </dev/null >>"$ndir/sshd.log" 2>&1 9>&-; then
        tail -n 20 "$ndir/sshd.log" >&2
        die "node$n: could not start its namespace and sshd (log: $ndir/sshd.log)"
    fi
    until ssh "${SSH_OPTS[@]}" "root@$addr" true 2>/dev/null; do
        if tail -c "+$log_start" "$ndir/sshd.log" | grep -q -E "fatal|Cannot bind"; then
            tail -c "+$log_start" "$ndir/sshd.log" | tail -n 20 >&2
            die "node$n: sshd failed (log: $ndir/sshd.log)"
        fi
        if [ $((SECONDS - started)) -ge "$LOGIN_TIMEOUT" ]; then
            tail -n 20 "$ndir/sshd.log" >&2
            die "node$n: no key login on $addr:$PORT after ${LOGIN_TIMEOUT}s (log: $ndir/sshd.log)"
        fi
        sleep 0.2
    done
    pid="$(sshd_pid "$n")"
    [ -n "$pid" ] || die "node$n: sshd answers but $ndir/sshd.pid names no sshd"
    ns="$(readlink "/proc/$pid/ns/mnt")"
    [ "$ns" != "$(own_ns)" ] || die "node$n: sshd runs in this machine's own mount namespace"
    echo "$ns" >"$ndir/mntns"
    echo "node$n up   $addr:$PORT pid $pid (started in $((SECONDS - started))s)"
}

# ---- commands ----------------------------------------------------------------------------------

cmd_up() {
    local n
    [ "$(id -u)" -eq 0 ] || die "up needs root (mount namespaces, sshd for root logins)"
    ensure_openssh
    ensure_keys
    for n in $(seq 1 "$NODES"); do
        start_node "$n"
    done
}

cmd_down() {
    local numbers
    mapfile -t numbers < <(node_numbers)
    stop_nodes "${numbers[@]}"
}

cmd_status() {
    local n pid
    for n in $(node_numbers); do
        pid="$(sshd_pid "$n")"
        if [ -n "$pid" ]; then
            echo "node$n up   $(node_addr "$n"):$PORT pid $pid"
        else
            echo "node$n down $(node_addr "$n"):$PORT -"
        fi
    done
}

cmd_ssh() {
    [ $# -ge 1 ] || usage
    local n="${1#node}"
    shift
    [[ "$n" =~ ^[0-9]+$ ]] || die "no such node: $n (node1, node2, ... or 1, 2, ...)"
    exec ssh "${SSH_OPTS[@]}" "root@$(node_addr "$n")" "$@"
}

main() {
    [ $# -ge 1 ] || usage
    check_settings
    local command="$1"
    shift
    case "$command" in
        up | down | status)
            [ $# -eq 0 ] || usage
            # Nothing to stop or report where there is no state directory.
            if [ "$command" = up ]; then
                mkdir -p "$DIR"
            elif [ ! -d "$DIR" ]; then
                [ "$command" = down ] || cmd_status
                return 0
            fi
            # One command at a time on a state directory (parallel test workers).
            exec 9>"$DIR/.lock"
            flock 9
            "cmd_$command"
            ;;
        ssh) cmd_ssh "$@" ;;
        *) usage ;;
    esac
}

main "$@"
