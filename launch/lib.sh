# shellcheck shell=bash
# Shared by launch/train, launch/scaling, launch/slurm, launch/fmnist-tune and launch/compare-tuners
# (sourced, not run): counts cores, reads an
# Open MPI hostfile, and builds the mpirun command line that maps RANKS x THREADS onto cores.
# Installed (cmake --install), the three run as PREFIX/bin/convoy-train, convoy-scaling and
# convoy-slurm: small wrappers that set CONVOY_PREFIX and run PREFIX/share/convoy/launch/NAME
# from the caller's directory.
#
#   convoy_program                     -> prints the convoy program to run: PREFIX/bin/convoy when
#                                         installed; in the repository build/convoy, or the
#                                         installed convoy on PATH when there is no build
#   convoy_models                      -> prints the example models' folder (launch/models or
#                                         PREFIX/share/convoy/models)
#   convoy_fmnist_subset CONVOY N OUT  -> writes OUT, the first N Fashion-MNIST training images
#   convoy_local_cores                 -> prints this machine's usable physical cores
#   convoy_read_hostfile FILE          -> sets CONVOY_HF_NODES (distinct hosts) and CONVOY_HF_SLOTS
#                                         (the smallest slot count of any host = cores per node)
#   convoy_mpirun RANKS THREADS CORES_PER_NODE NODES [HOSTFILE]
#                                      -> sets the array CONVOY_MPIRUN (mpirun and its options,
#                                         without the program) and CONVOY_RPN (ranks per node)
#   convoy_run_stoppable CMD...        -> runs CMD (an mpirun line) and returns its status; a
#                                         SIGTERM/SIGINT to this shell reaches CMD as SIGUSR1
#
# Binding rules (one node): RANKS*THREADS <= cores -> --map-by slot:PE=THREADS (each rank owns
# THREADS cores); otherwise --bind-to none; --oversubscribe when RANKS > cores.
# Several nodes: R = ceil(RANKS/NODES) ranks per node, --map-by ppr:R:node:PE=THREADS when
# R*THREADS <= cores per node, otherwise --map-by ppr:R:node --bind-to none (+ --oversubscribe
# when R > cores per node). OMP_NUM_THREADS (and OMP_PLACES / OMP_PROC_BIND when set) reach every
# rank through -x. The caller exports OMP_NUM_THREADS.

convoy_program() {
    if [[ -n ${CONVOY_PREFIX:-} ]]; then
        echo "$CONVOY_PREFIX/bin/convoy"
    elif [[ ! -x build/convoy ]] && command -v convoy >/dev/null 2>&1; then
        command -v convoy
    else
        echo build/convoy
    fi
}

convoy_models() {
    if [[ -n ${CONVOY_PREFIX:-} ]]; then echo "$CONVOY_PREFIX/share/convoy/models"; else echo launch/models; fi
}

# convoy_fmnist_subset CONVOY N OUT: OUT (a dataset) of the first N Fashion-MNIST training
# images, cut from Debian's IDX files (SRC, default /usr/share/datasets/fashion-mnist).
convoy_fmnist_subset() {
    local convoy=$1 n=$2 out=$3 src=${SRC:-/usr/share/datasets/fashion-mnist} tmp
    tmp=$(mktemp -d) || return 1
    be32() { printf "\\x$(printf %02x $(($1 >> 24 & 255)))\\x$(printf %02x $(($1 >> 16 & 255)))"; \
             printf "\\x$(printf %02x $(($1 >> 8 & 255)))\\x$(printf %02x $(($1 & 255)))"; }
    # IDX: a 4-byte magic, big-endian counts, then the bytes; keep the first n records (head
    # closing the pipe early is the point: no pipefail here)
    set +o pipefail
    { printf '\x00\x00\x08\x03'; be32 "$n"; be32 28; be32 28
      gzip -dc "$src/train-images-idx3-ubyte.gz" | tail -c +17 | head -c $((n * 784)); } > "$tmp/images"
    { printf '\x00\x00\x08\x01'; be32 "$n"
      gzip -dc "$src/train-labels-idx1-ubyte.gz" | tail -c +9 | head -c "$n"; } > "$tmp/labels"
    set -o pipefail
    mkdir -p "$(dirname "$out")" && "$convoy" convert idx "$tmp/images" "$tmp/labels" --out "$out"
    local rc=$?
    rm -rf "$tmp"
    return $rc
}

convoy_local_cores() {
    # Physical cores (Open MPI's default slot count), capped by the CPUs this process may use.
    local cores ncpu
    cores=$(lscpu -b -p=Core,Socket 2>/dev/null | grep -v '^#' | sort -u | wc -l || true)
    ncpu=$(nproc)
    if [[ -z $cores || $cores -lt 1 || $cores -gt $ncpu ]]; then cores=$ncpu; fi
    echo "$cores"
}

# shellcheck disable=SC2034  # CONVOY_HF_* are read by the caller
convoy_read_hostfile() {
    local file=$1 out
    if [[ ! -r $file ]]; then
        echo "convoy: $file: hostfile not readable" >&2; return 1
    fi
    # One host per line ("host slots=N [max_slots=M]", '#' comments); a host listed twice adds its
    # slots; a host without slots= counts as this machine's cores (Open MPI would detect that
    # host's cores, which we cannot see from here).
    out=$(awk -v local="$(convoy_local_cores)" -v file="$file" '
        { sub(/#.*/, "") }
        NF == 0 { next }
        {
            host = $1; s = -1
            for (i = 2; i <= NF; i++)
                if ($i ~ /^slots=[0-9]+$/) { s = substr($i, 7) + 0 }
                else if ($i ~ /^slots=/) { printf "convoy: %s:%d: bad %s\n", file, NR, $i > "/dev/stderr"; bad = 1 }
            if (s < 0) { s = local; guessed[host] = 1 }
            if (!(host in slots)) order[++n] = host
            slots[host] += s
        }
        END {
            if (bad) exit 1
            if (n == 0) { printf "convoy: %s: no hosts\n", file > "/dev/stderr"; exit 1 }
            min = -1
            for (i = 1; i <= n; i++) {
                h = order[i]
                if (h in guessed)
                    printf "convoy: %s: %s has no slots=, assuming %d (this machine'"'"'s cores)\n", file, h, local > "/dev/stderr"
                if (min < 0 || slots[h] < min) min = slots[h]
            }
            print n, min
        }' "$file") || return 1
    read -r CONVOY_HF_NODES CONVOY_HF_SLOTS <<<"$out"
    if (( CONVOY_HF_SLOTS < 1 )); then
        echo "convoy: $file: a host has 0 slots" >&2; return 1
    fi
}

# shellcheck disable=SC2034  # CONVOY_RPN is read by the caller
convoy_mpirun() {
    local ranks=$1 threads=$2 cores=$3 nodes=$4 hostfile=${5:-} v
    CONVOY_MPIRUN=(mpirun -np "$ranks")
    if [[ -n $hostfile ]]; then CONVOY_MPIRUN+=(--hostfile "$hostfile"); fi
    CONVOY_MPIRUN+=(-x OMP_NUM_THREADS)
    for v in OMP_PLACES OMP_PROC_BIND; do
        if [[ -n ${!v:-} ]]; then CONVOY_MPIRUN+=(-x "$v"); fi
    done
    if (( nodes > 1 )); then
        CONVOY_RPN=$(( (ranks + nodes - 1) / nodes ))
        if (( CONVOY_RPN * threads <= cores )); then
            CONVOY_MPIRUN+=(--map-by "ppr:$CONVOY_RPN:node:PE=$threads")
        else
            CONVOY_MPIRUN+=(--map-by "ppr:$CONVOY_RPN:node" --bind-to none)
        fi
        if (( CONVOY_RPN > cores )); then CONVOY_MPIRUN+=(--oversubscribe); fi
    else
        CONVOY_RPN=$ranks
        if (( ranks * threads <= cores )); then
            CONVOY_MPIRUN+=(--map-by "slot:PE=$threads")
        else
            CONVOY_MPIRUN+=(--bind-to none)
        fi
        if (( ranks > cores )); then CONVOY_MPIRUN+=(--oversubscribe); fi
    fi
}

# An interrupted run exits 75 (EX_TEMPFAIL) on every rank after saving its checkpoint. Open MPI's
# mpirun, sent SIGTERM or SIGINT itself, aborts the job instead: it exits 1 whatever the ranks
# return, sends them SIGTERM a second later and SIGKILL after odls_base_sigkill_timeout (1 s)
# more, perhaps before a long step and its save are done. SIGUSR1 it passes on to the ranks as
# it is, and convoy stops on it as on SIGTERM; then mpirun exits with the ranks' 75. So the
# launchers run mpirun in the background and turn this shell's SIGTERM/SIGINT into a SIGUSR1.
convoy_run_stoppable() {
    "$@" &
    local pid=$! rc=0
    # shellcheck disable=SC2064  # the pid is meant to be expanded now
    trap "kill -USR1 $pid 2>/dev/null || true" TERM INT
    # a trapped signal interrupts `wait` while CMD still runs; bash keeps the status of its
    # background jobs, so the last `wait` returns CMD's
    while kill -0 "$pid" 2>/dev/null; do wait "$pid" || true; done
    wait "$pid" || rc=$?
    trap - TERM INT
    return "$rc"
}
