#!/bin/sh
# Makes the build context of deploy/container/Containerfile from a built nehr-probe:
#   context.sh BINARY DIR
# DIR/Containerfile and DIR/rootfs/ with
#   usr/local/bin/nehr-probe            the binary, stripped of debug symbols
#   the C libraries it loads            as `ldd` finds them on this machine (glibc)
#   etc/ssl/certs/ca-certificates.crt   this machine's CA bundle, for https targets
#   etc/passwd, etc/group               the user nehr-probe, 65532, with no shell
#   etc/nsswitch.conf                   hosts from /etc/hosts, then DNS
# The image runs the binary with the libraries it was linked against, so build it on
# the machine (or the same distribution) that built the binary.
set -eu
if [ $# -ne 2 ]; then
    echo "usage: $0 BINARY DIR" >&2
    exit 2
fi
bin=$1
dir=$2
here=$(cd "$(dirname "$0")" && pwd)
bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -f "$bin" ] || { echo "$0: no binary at $bin (cargo build --release first)" >&2; exit 2; }
[ -f "$bundle" ] || { echo "$0: no CA bundle at $bundle (apt-get install ca-certificates)" >&2; exit 2; }
command -v ldd >/dev/null || { echo "$0: ldd is needed (it comes with libc-bin)" >&2; exit 2; }

rm -rf "$dir/rootfs"
mkdir -p "$dir/rootfs/usr/local/bin" "$dir/rootfs/etc/ssl/certs"
root=$dir/rootfs
cp "$here/Containerfile" "$dir/Containerfile"
if command -v strip >/dev/null; then
    strip -o "$root/usr/local/bin/nehr-probe" "$bin"
else
    cp "$bin" "$root/usr/local/bin/nehr-probe"
fi
chmod 0755 "$root/usr/local/bin/nehr-probe"

# Every library the dynamic loader maps, and the loader itself, at the path it is
# looked up by (symbolic links followed: the image holds plain files). A static
# binary needs none.
if ldd "$bin" >/dev/null 2>&1; then
    ldd "$bin" | while read -r first second third _; do
        case "$second" in
            "=>") lib=$third ;;
            *) lib=$first ;;
        esac
        case "$lib" in
            /*) mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib" ;;
        esac
    done
    [ -n "$(find "$root" -name 'ld-*.so*')" ] || { echo "$0: ldd names no dynamic loader for $bin" >&2; exit 1; }
fi

cp -L "$bundle" "$root/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$root/etc/ssl/certs/ca-certificates.crt"
printf 'nehr-probe:x:65532:65532:nehr-probe:/nonexistent:/sbin/nologin\n' > "$root/etc/passwd"
printf 'nehr-probe:x:65532:\n' > "$root/etc/group"
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/nsswitch.conf"
echo "$dir: build context for $(basename "$bin") ($(du -sh "$root" | cut -f1) in rootfs/)"
