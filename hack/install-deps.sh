#!/usr/bin/env bash
# Install the Debian packages cubby and its tests need, if missing, and
# unpack Debian's dynamically linked busybox for critest's stand-in images.
# Idempotent: a machine that has them all is left untouched (no apt-get
# update). Needs root. Go itself is expected at /usr/local/go; put
# /usr/local/go/bin on PATH (the Makefile and .ci/run do).
set -euo pipefail

packages=(
	containernetworking-plugins # CNI plugins in /usr/lib/cni (bridge, host-local, portmap)
	iptables                    # used by the bridge and portmap plugins
	busybox-static              # the test image is built from /bin/busybox
	iproute2                    # ip: tests inspect links and addresses
	util-linux                  # nsenter: tests look inside pod network namespaces; ipcs/ipcmk for critest
	procps                      # pgrep, copied into critest's busybox stand-in
	libseccomp-dev              # cubbyd compiles seccomp profiles with libseccomp (cgo)
	pkg-config                  # finds libseccomp for cgo
	gcc                         # cgo
	systemd                     # systemd-analyze verify checks contrib/cubby.service (no running systemd needed)
)

missing=()
for pkg in "${packages[@]}"; do
	if ! dpkg -s "$pkg" >/dev/null 2>&1; then
		missing+=("$pkg")
	fi
done

# Debian's busybox (dynamic) conflicts with busybox-static, so it is
# unpacked, not installed: its shell runs commands from PATH as the
# upstream busybox images' shell does (see hack/critestenv).
shell_busybox=/var/cache/cubby/busybox/busybox

if ((${#missing[@]} == 0)) && [[ -x $shell_busybox ]]; then
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	echo "install-deps: missing ${missing[*]:-} ${shell_busybox}; run as root to install them" >&2
	exit 1
fi

if ((${#missing[@]} > 0)); then
	echo "install-deps: installing ${missing[*]}"
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

if [[ ! -x $shell_busybox ]]; then
	echo "install-deps: unpacking Debian's busybox into $(dirname "$shell_busybox")"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	chmod 755 "$tmp" # apt's sandbox user writes the download here
	if ! (cd "$tmp" && apt-get download busybox); then
		apt-get update
		(cd "$tmp" && apt-get download busybox)
	fi
	dpkg-deb -x "$tmp"/busybox_*.deb "$tmp/root"
	mkdir -p "$(dirname "$shell_busybox")"
	install -m 0755 "$tmp/root/bin/busybox" "$shell_busybox"
fi
