#!/usr/bin/env bash
# Install the Debian packages cubby and its tests need, if missing.
# Idempotent: a machine that has them all is left untouched (no apt-get
# update). Needs root. Go itself is expected at /usr/local/go; put
# /usr/local/go/bin on PATH (the Makefile and .ci/run do).
set -euo pipefail

packages=(
	containernetworking-plugins # CNI plugins in /usr/lib/cni (bridge, host-local, portmap, loopback)
	iptables                    # used by the bridge and portmap plugins
	busybox-static              # the test image is built from /bin/busybox
	iproute2                    # ip: tests inspect links and addresses
	util-linux                  # nsenter: tests look inside pod network namespaces; ipcs/ipcmk for critest
	procps                      # pgrep, copied into critest's busybox stand-in
	libseccomp-dev              # cubbyd compiles seccomp profiles with libseccomp (cgo)
	pkg-config                  # finds libseccomp for cgo
	gcc                         # cgo
)

missing=()
for pkg in "${packages[@]}"; do
	if ! dpkg -s "$pkg" >/dev/null 2>&1; then
		missing+=("$pkg")
	fi
done

if ((${#missing[@]} == 0)); then
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
