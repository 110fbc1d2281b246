#!/usr/bin/env bash
# `cmake --install` of this build into a scratch prefix, then the prefix moved elsewhere (both
# the pkg-config file and the CMake package are relocatable), and the C API example
# (tests/c-api/train_xor.c) built against it twice and run: with `pkg-config --static convoy`
# and as a stand-alone CMake project using find_package(convoy). Also checks that the
# installed headers are complete (the umbrella includes them all; none includes a private one).
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
for f in bin/convoy "$lib/libconvoy.a" include/convoy/convoy.h include/convoy/version.h share/man/man1/convoy.1 \
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
cmp -s "$p/share/man/man1/convoy.1" "$build/convoy.1" || fail "installed man page differs"

export OMP_NUM_THREADS=1 # the example's network is tiny
# pkg-config: a static libconvoy brings its dependencies' link lines with --static
export PKG_CONFIG_PATH=$p/$lib/pkgconfig
flags=$(pkg-config --cflags --libs --static convoy) || fail "pkg-config convoy: $flags"
[[ $(pkg-config --modversion convoy) == $(sed -nE 's/^project\(convoy VERSION ([0-9.]+) .*/\1/p' "$src/CMakeLists.txt") ]] ||
    fail "pkg-config --modversion: $(pkg-config --modversion convoy)"
mkdir -p pc
# shellcheck disable=SC2086
${CC:-cc} -std=c11 -Wall -Wextra -Werror -o pc/train_xor "$src/tests/c-api/train_xor.c" $flags >pc.log 2>&1 ||
    fail "build with pkg-config flags '$flags': $(cat pc.log)"
[[ -x pc/train_xor ]] && { pc/train_xor pc >pc.out 2>&1 || fail "train_xor (pkg-config build): $(cat pc.out)"; }

# CMake: the example's own CMakeLists.txt finds the installed package
cmake -S "$src/tests/c-api" -B cm -DCMAKE_PREFIX_PATH="$p" -DCMAKE_BUILD_TYPE=Release >cm.log 2>&1 &&
    cmake --build cm >>cm.log 2>&1 || fail "find_package(convoy) build: $(tail -20 cm.log)"
[[ -x cm/train_xor ]] && { cm/train_xor cm >cm.out 2>&1 || fail "train_xor (CMake build): $(cat cm.out)"; }
grep -q "accuracy" cm.out 2>/dev/null || fail "train_xor (CMake build) printed no accuracy"

[[ $fails -eq 0 ]] && echo "e2e_install: all passed" && cat cm.out
exit $((fails > 0))
