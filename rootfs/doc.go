// Package rootfs owns container images and container root filesystems on
// one node.
//
// It pulls images from OCI distribution registries (through
// go-containerregistry), verifies every blob against its digest, unpacks
// each layer once into a directory keyed by its chain ID, and records images
// (tags, digests, config) in a bbolt database so they survive a daemon
// restart. Per-container snapshots are overlayfs mounts whose lowerdirs are
// those layer directories and whose upper and work dirs are private to the
// container.
//
// On-disk layout below Config.Root:
//
//	meta.db              bbolt: images, layers, snapshots, manifest/config blobs
//	layers/<chain hex>/  one unpacked layer, overlay whiteout format
//	l/<n>                short symlink to a layer dir, used in lowerdir=
//	snapshots/<id>/      upper/ and work/ of one container
//	empty/               lowerdir for images without layers
//	tmp/                 in-flight unpacks and trash; wiped by Open
//
// A directory under layers/ is visible only after its unpack finished and
// was renamed into place, and is used only once its record is in meta.db;
// Open removes directories that have no record, so a crash at any point
// leaves no half layer and no half image.
//
// Store is safe for concurrent use. Downloads, unpacks and directory removal
// run without the store lock; only the short metadata commits take it.
// SetRegistries swaps the mirrors and insecure registries while pulls run.
// A pull logs its progress every Config.ProgressInterval and tells
// Config.PullObserver (cubbyd's metrics) of its start, bytes and end; the
// package itself knows nothing of Prometheus.
package rootfs
