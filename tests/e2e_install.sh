#!/usr/bin/env bash
# `cmake --install` of this build into a scratch prefix, then the prefix moved elsewhere (the
# pkg-config file, the CMake package and the launchers are relocatable), and the C API example
# (tests/c-api/train_xor.c) built against it four ways and run: plain `pkg-config --libs convoy`
# (libconvoy.so), pkg-config --static with the archive, and a stand-alone CMake project using
# find_package(convoy) with convoy::convoy (static) and convoy::convoy_shared. Also checks that
# the installed headers are complete (the umbrella includes them all; none includes a private
# one) and that the installed launchers (convoy-train, convoy-scaling, convoy-slurm) run the
# installed program and models from any directory.
# usage: e2e_install.sh CONVOY SCRATCH_DIR SOURCE_DIR   (CONVOY lies in the build directory)
set -uo pipefail
convoy=$1 dir=$2 src=$3
build=$(cd "$(dirname "$convoy")" && pwd)
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" || exit 1
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

cmake --install "$build" --prefix "$dir/staged" >install.log 2>&1 || { cat install.log; fail "cmake --install"; exit 1; }
mv staged prefix && p=$dir/prefix

# lib, or lib/x86_64-linux-gnu when the build was configured for /usr (GNUInstallDirs)
lib=$(cd "$p" && find . -name libconvoy.a -printf '%h\n' | sed 's|^\./||' | head -1)
[[ -n $lib ]] || fail "libconvoy.a not installed"
version=$(sed -nE 's/^project\(convoy VERSION ([0-9.]+) .*/\1/p' "$src/CMakeLists.txt")
for f in bin/convoy bin/convoy-train bin/convoy-scaling bin/convoy-slurm share/convoy/launch/lib.sh \
    share/convoy/models/fmnist-cnn.model "$lib/libconvoy.so.$version" "$lib/libconvoy.a" include/convoy/convoy.h include/convoy/version.h share/man/man1/convoy.1 \
    "$lib/pkgconfig/convoy.pc" "$lib/cmake/convoy/convoyConfig.cmake" "$lib/cmake/convoy/convoyConfigVersion.cmake" \
    "$lib/cmake/convoy/convoyTargets.cmake"; do
    [[ -f $p/$f ]] || fail "not installed: $f"
done
for h in "$src"/include/convoy/*.h; do
    name=$(basename "$h")
    cmp -s "$h" "$p/include/convoy/$name" || fail "header not installed: convoy/$name"
    grep -q "^#include \"convoy/$name\"" "$p/include/convoy/convoy.h" || fail "<convoy/convoy.h> lacks convoy/$name"
done
# installed headers include only each other and system headers
grep -h '^#include "' "$p"/include/convoy/*.h | sed -E 's/^#include "([^"]+)".*/\1/' | sort -u | while read -r inc; do
    [[ -f $p/include/$inc ]] || echo "$inc"
done >missing.txt
[[ -s missing.txt ]] && fail "installed headers include files that are not installed: $(tr '\n' ' ' <missing.txt)"
[[ $("$p/bin/convoy" --version | head -1) == $("$convoy" --version | head -1) ]] || fail "installed convoy --version"
# the Python package finds the installed library from where it is installed (no CONVOY_LIB)
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
    # a sanitizer build's library needs ASan's runtime first in the process (python is not built
    # with it): preloaded, leak checks off (the interpreter's own allocations)
    pre=()
    if readelf -d "$p/$lib/libconvoy.so" | grep "NEEDED.*libasan" >/dev/null; then
        pre=(LD_PRELOAD="$(${CC:-cc} -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0)
    fi
    out=$(env -u CONVOY_LIB "${pre[@]}" PYTHONPATH="$p/lib/python3/dist-packages" /usr/bin/python3 -c \
        'import convoy, convoy._lib as l; print(convoy.size, l.lib._name)' 2>&1) || fail "import convoy (installed): $out"
    [[ $out == "1 $p/"* ]] || fail "the installed package loaded another library: $out"
fi
cmp -s "$p/share/man/man1/convoy.1" "$build/convoy.1" || fail "installed man page differs"

[[ $(readlink "$p/$lib/libconvoy.so") == libconvoy.so.${version%%.*} ]] || fail "libconvoy.so -> $(readlink "$p/$lib/libconvoy.so")"
readelf -d "$p/$lib/libconvoy.so" | grep "SONAME.*\[libconvoy.so.${version%%.*}\]" >/dev/null || fail "libconvoy.so's SONAME"

export OMP_NUM_THREADS=1 # the example's network is tiny
export PKG_CONFIG_PATH=$p/$lib/pkgconfig
[[ $(pkg-config --modversion convoy) == "$version" ]] || fail "pkg-config --modversion: $(pkg-config --modversion convoy)"
# build DIR FLAGS...: the example built with FLAGS into DIR/train_xor, then run
build_example() {
    local d=$1; shift
    mkdir -p "$d"
    ${CC:-cc} -std=c11 -Wall -Wextra -Werror -o "$d/train_xor" "$src/tests/c-api/train_xor.c" "$@" >"$d.log" 2>&1 ||
        { fail "build ($d) with '$*': $(cat "$d.log")"; return; }
    LD_LIBRARY_PATH=$p/$lib "$d/train_xor" "$d" >"$d.out" 2>&1 || fail "train_xor ($d build): $(cat "$d.out")"
}
# plain pkg-config: the shared library, which brings its own dependencies
read -ra flags <<<"$(pkg-config --cflags --libs convoy)" || fail "pkg-config convoy"
build_example pc "${flags[@]}"
readelf -d pc/train_xor 2>/dev/null | grep "NEEDED.*libconvoy.so.${version%%.*}" >/dev/null || fail "pkg-config build does not use libconvoy.so"
# the archive: --static adds the dependencies' link lines
read -ra flags <<<"$(pkg-config --cflags --libs --static convoy | sed 's/-lconvoy\b/-l:libconvoy.a/')" || fail "pkg-config --static convoy"
build_example pcs "${flags[@]}"
readelf -d pcs/train_xor 2>/dev/null | grep "NEEDED.*libconvoy" >/dev/null && fail "pkg-config --static build uses libconvoy.so"

# CMake: the example's own CMakeLists.txt finds the installed package, static and shared
for kind in static shared; do
    shared=OFF; [[ $kind == shared ]] && shared=ON
    cmake -S "$src/tests/c-api" -B "cm-$kind" -DCMAKE_PREFIX_PATH="$p" -DCMAKE_BUILD_TYPE=Release \
        -DCONVOY_EXAMPLE_SHARED=$shared >"cm-$kind.log" 2>&1 && cmake --build "cm-$kind" >>"cm-$kind.log" 2>&1 ||
        fail "find_package(convoy) $kind build: $(tail -20 "cm-$kind.log")"
    [[ -x cm-$kind/train_xor ]] && { "cm-$kind/train_xor" "cm-$kind" >"cm-$kind.out" 2>&1 ||
        fail "train_xor (CMake $kind build): $(cat "cm-$kind.out")"; }
    grep -q "accuracy" "cm-$kind.out" 2>/dev/null || fail "train_xor (CMake $kind build) printed no accuracy"
done
readelf -d cm-shared/train_xor 2>/dev/null | grep "NEEDED.*libconvoy.so" >/dev/null || fail "convoy::convoy_shared build does not use libconvoy.so"
readelf -d cm-static/train_xor 2>/dev/null | grep "NEEDED.*libconvoy" >/dev/null && fail "convoy::convoy build uses libconvoy.so"

# the installed launchers, run from another directory after the move: the installed program and
# models, paths relative to the caller
mkdir -p elsewhere && cd elsewhere || exit 1
out=$("$p/bin/convoy-slurm" --dry-run 2>&1) || fail "convoy-slurm --dry-run: $out"
grep -q "$p/bin/convoy train $p/share/convoy/models/fmnist-cnn.model --data data/fmnist/train.h5" <<<"$out" ||
    fail "convoy-slurm --dry-run does not run the installed convoy on the installed model: $out"
out=$("$p/bin/convoy-train" -n 1 -t 1 -- summary "$p/share/convoy/models/fmnist-mlp.model" 2>&1) || fail "convoy-train: $out"
grep -q "^Total params: 235,146" <<<"$out" || fail "convoy-train ran no summary: $out"
grep -q "mpirun -np 1 .*$p/bin/convoy summary" <<<"$out" || fail "convoy-train did not run the installed convoy: $out"
out=$("$p/bin/convoy-scaling" --dry-run fmnist-mlp 2>&1) || fail "convoy-scaling --dry-run: $out"
grep -q "$p/bin/convoy bench $p/share/convoy/models/fmnist-mlp.model" <<<"$out" || fail "convoy-scaling --dry-run: $out"
cd .. || exit 1

[[ $fails -eq 0 ]] && echo "e2e_install: all passed" && cat cm-shared.out
exit $((fails > 0))
