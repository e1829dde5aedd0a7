// Package unpack applies one image layer (a tar stream) to a directory in the
// on-disk form that overlayfs expects of a lower layer.
//
// Layer tarballs are hostile input. Every entry is resolved inside the target
// directory with openat2-style resolution (github.com/cyphar/filepath-securejoin
// pathrs-lite): ".." and absolute names are clamped to the root, symlinks met
// along the way are followed as if the directory were "/", and the final
// component is always created or modified through a directory file
// descriptor with no-follow semantics. No entry can create, modify or link to
// anything outside the directory.
//
// OCI whiteouts are converted to the overlay format: ".wh.<name>" becomes a
// 0/0 character device named <name>, and ".wh..wh..opq" sets the
// trusted.overlay.opaque="y" xattr on its directory. Stacking directories
// produced by Apply as overlay lowerdirs therefore yields the image's root
// filesystem.
//
// Apply needs CAP_SYS_ADMIN (trusted.* xattrs), CAP_MKNOD and CAP_CHOWN to
// reproduce a layer faithfully; it is meant to run as root in the daemon.
package unpack
