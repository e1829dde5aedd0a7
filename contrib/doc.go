// Package contrib holds the files `make install` puts on a node besides the
// binaries: the systemd unit (cubby.service) and a crictl.yaml example. Its
// tests install into a temporary DESTDIR and check the tree.
package contrib
