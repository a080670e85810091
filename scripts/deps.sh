# Sourced by run.sh and test.sh: installs the Debian packages sslc needs,
# only those missing, with one `apt-get update` at most.
sslc_build_packages=(meson ninja-build pkg-config gcc libc6-dev libpng-dev libjpeg62-turbo-dev
                     libhdf5-dev libcmocka-dev libdnnl-dev zlib1g-dev python3)
sslc_data_packages=(dataset-fashion-mnist)
# Only tests and benchmarks use PyTorch: interop checks and side-by-side timing.
sslc_torch_packages=(python3-torch python3-torchvision python3-h5py python3-numpy)
# The results table's plot (scripts/plot_results.py, plot_confusion.py).
sslc_plot_packages=(python3-matplotlib)
# Data-parallel runs and their tests (mpirun -np 2); the build finds MPI by itself.
sslc_mpi_packages=(libopenmpi-dev openmpi-bin)

sslc_ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "sslc: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ -z "${SSLC_APT_UPDATED:-}" ]; then
        $sudo apt-get update -qq
        SSLC_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# sslc_build DIR [meson options...]: configures DIR (again when the options
# differ from those it was configured with), then builds it. The build's
# output is shown only when it fails.
sslc_build() {
    local dir=$1
    shift
    local want="$*" stamp="$dir/.sslc-options"
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >/dev/null
    elif [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        meson setup --wipe "$dir" "$@" >/dev/null
    fi
    printf '%s' "$want" > "$stamp"
    local log
    if ! log=$(ninja -C "$dir" 2>&1); then
        printf '%s\n' "$log" | tail -n 60 >&2
        echo "sslc: the build in $dir failed (above)" >&2
        return 1
    fi
}
