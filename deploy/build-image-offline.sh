#!/usr/bin/env bash
# Builds the Cairn image `cairn:local` (or $CAIRN_IMAGE) with no container registry:
# stages a root file system from the host's release binary and the libraries it links
# (glibc, libstdc++, libgcc_s, the dynamic loader), adds a static busybox for health
# probes and /bin/sh, then `docker build`s deploy/Dockerfile.offline (FROM scratch).
#
# The binary: $CAIRN_BINARY, else $CARGO_TARGET_DIR/release/cairn, else
# $HOME/.cache/cairn-target/release/cairn, else ./target/release/cairn. Build it first with
# `cargo build --release --bin cairn`. busybox-static is installed with apt-get if missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
image="${CAIRN_IMAGE:-cairn:local}"

binary="${CAIRN_BINARY:-}"
if [ -z "$binary" ]; then
  for candidate in "${CARGO_TARGET_DIR:-}/release/cairn" "$HOME/.cache/cairn-target/release/cairn" \
                   "$here/../target/release/cairn"; do
    if [ -x "$candidate" ]; then binary="$candidate"; break; fi
  done
fi
if [ -z "$binary" ] || [ ! -x "$binary" ]; then
  echo "build-image-offline: no cairn release binary found; run: cargo build --release --bin cairn" >&2
  exit 1
fi

# A static busybox (Debian's busybox-static, /bin/busybox) runs without any library.
if ! dpkg -s busybox-static >/dev/null 2>&1; then
  echo "build-image-offline: installing busybox-static"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -qq --no-install-recommends busybox-static >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends busybox-static >/dev/null; }
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/bin" "$root/etc" "$root/tmp" "$ctx/data"
chmod 1777 "$root/tmp"

echo "build-image-offline: binary $binary"
cp "$binary" "$root/usr/local/bin/cairn"
# Debug info is most of a release binary's size; the image does without it.
if command -v strip >/dev/null 2>&1; then strip --strip-debug "$root/usr/local/bin/cairn"; fi
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"

# Every library the binary loads, at the path the loader looks it up, plus the loader
# itself (the line of `ldd` without "=>", e.g. /lib64/ld-linux-x86-64.so.2).
libs="$(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $2 ~ /^\(/ { print $1 }' | sort -u)"
if ! grep -q 'ld-linux' <<<"$libs"; then
  echo "build-image-offline: ldd named no dynamic loader for $binary" >&2
  exit 1
fi
for lib in $libs; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
  echo "build-image-offline: library $lib"
done
# The loader is often looked up through a symlinked directory (/lib64 -> usr/lib64 etc.);
# the copies above land at the literal paths ldd printed, which is where it looks.

cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
cairn:x:10001:10001:cairn:/data:/sbin/nologin
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
cairn:x:10001:
GROUP
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"

docker build -q -f "$here/Dockerfile.offline" -t "$image" "$ctx" >/dev/null
echo "build-image-offline: built $image ($(docker image inspect -f '{{.Size}}' "$image") bytes)"
# The image must start: the binary, its libraries and the loader are all there.
docker run --rm --entrypoint /usr/local/bin/cairn "$image" --version >/dev/null 2>&1 \
  || docker run --rm --entrypoint /usr/local/bin/cairn "$image" --help >/dev/null
echo "build-image-offline: $image runs"
