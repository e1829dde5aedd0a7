// Package testimage builds the busybox image that the end-to-end suite runs,
// at test time, from the host's statically linked busybox (Debian's
// busybox-static), and serves it from an in-process registry on a loopback
// listener.
//
// No image blob is committed to the repository: the image is assembled from
// /bin/busybox, a hard link per applet, and a minimal /etc. Building is
// deterministic, so the same busybox binary always yields the same digest.
package testimage
