#!/usr/bin/env bash
# What the image test needs before it can build the Dockerfile with podman: podman itself (and
# runc, fuse-overlayfs, slirp4netns, uidmap, the CNI plugins, from Debian's apt), and the base
# image the Dockerfile names, docker.io/library/debian:bookworm-slim. Where Docker Hub cannot be
# reached, that base is made from Debian's own packages (debootstrap, minbase, trimmed as the
# official slim image is) and imported under the same name, so the Dockerfile stays as users
# elsewhere build it. The base's tarball is cached in target/deploy-image/, so reruns import it
# in seconds.
#
# Run by tests/deploy/run.sh; on failure it names the command that failed (its stderr tail is
# the image test's skip reason). Needs root (or sudo) for apt-get, debootstrap and podman.
set -euo pipefail
trap 'echo "image-setup: \`$BASH_COMMAND\` failed (status $?)" >&2' ERR
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/../.."

base="docker.io/library/debian:bookworm-slim"
cache="$PWD/target/deploy-image"
# Named after this script, so that a change to how the base is made makes a new one.
tarball="$cache/debian-bookworm-slim-$(sha256sum "$self" | cut -c1-12).tar"
mkdir -p "$cache"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }

need=()
command -v podman >/dev/null 2>&1 || need+=(podman fuse-overlayfs slirp4netns uidmap containernetworking-plugins iptables)
# runc: the test runs containers with it (Debian 12's crun refuses cgroup v1+v2 hybrid hosts).
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ "${#need[@]}" -gt 0 ]; then
  echo "image-setup: installing ${need[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if as_root podman image exists "$base"; then
  exit 0
fi
if [ -s "$tarball" ]; then
  echo "image-setup: importing $base from $tarball" >&2
  as_root podman import -q --change 'CMD ["bash"]' "$tarball" "$base" >/dev/null
  exit 0
fi
if as_root podman pull -q "$base" >/dev/null 2>"$cache/pull.err"; then
  exit 0
fi
echo "image-setup: cannot pull $base ($(tail -n1 "$cache/pull.err")); making it with debootstrap" >&2

# The Debian mirror this machine's apt uses (deb822 URIs: or one-line deb), else Debian's CDN.
apt_uri() {
  { cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null || true; } |
    grep -E '^(URIs:|deb) ' | grep -oE "https?://[^ ]+/$1/?( |\$)" | head -n1 | tr -d ' ' |
    sed 's:/$::' || true
}
mirror="$(apt_uri debian)"
mirror="${mirror:-http://deb.debian.org/debian}"
security="$(apt_uri debian-security)"
security="${security:-http://deb.debian.org/debian-security}"
rootfs="$cache/rootfs"
as_root rm -rf "$rootfs"
if ! as_root debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1; then
  tail -n 5 "$cache/debootstrap.log" >&2
  echo "image-setup: \`debootstrap --variant=minbase bookworm $rootfs $mirror\` failed (log: $cache/debootstrap.log)" >&2
  exit 1
fi

# Trimmed like the official slim image: no docs, man pages, locales or apt caches, the same apt
# settings and sources (updates and security).
as_root tee "$rootfs/etc/dpkg/dpkg.cfg.d/docker" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
# Apt as in the official image: no package caches left in a layer after `apt-get install`.
as_root tee "$rootfs/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Apt::AutoRemove::SuggestsImportant "false";' | as_root tee "$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests" >/dev/null
printf 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n' |
  as_root tee "$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes" >/dev/null
echo 'Acquire::Languages "none";' | as_root tee "$rootfs/etc/apt/apt.conf.d/docker-no-languages" >/dev/null
as_root find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
as_root find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
as_root rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda}/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log \
  "$rootfs"/etc/apt/sources.list "$rootfs"/dev/* "$rootfs"/proc/* "$rootfs"/sys/*
as_root tee "$rootfs/etc/apt/sources.list.d/debian.sources" >/dev/null <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
rm -f "$cache"/debian-bookworm-slim-*.tar
as_root tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
as_root rm -rf "$rootfs"
mv "$tarball.tmp" "$tarball"
as_root podman import -q --change 'CMD ["bash"]' "$tarball" "$base" >/dev/null
echo "image-setup: $base made from $mirror ($(du -h "$tarball" | cut -f1))" >&2
