package framework

import (
	"flag"
	"strings"
)

// Options are the suite's command-line settings.
type Options struct {
	// Endpoint is the CRI endpoint of an already running runtime
	// ("unix:///run/cubby/cubby.sock"). Empty starts a private cubbyd per test.
	Endpoint string
	// Cubbyd is the cubbyd binary to start. Empty builds cubby/cmd/... from
	// the module once per test binary; cubbyd finds cubby-pod next to itself.
	Cubbyd string
	// Busybox is the static busybox the test image is built from.
	Busybox string
}

// Register adds the options' flags to fs.
func (o *Options) Register(fs *flag.FlagSet) {
	fs.StringVar(&o.Endpoint, "endpoint", "", "CRI endpoint of a running runtime (unix:///path); empty starts a private cubbyd per test")
	fs.StringVar(&o.Cubbyd, "cubbyd", "", "cubbyd binary to start; empty builds cubby/cmd/... once")
	fs.StringVar(&o.Busybox, "busybox", "/bin/busybox", "static busybox binary the test image is built from")
}

// External reports whether the suite runs against a runtime it did not start.
func (o Options) External() bool { return o.Endpoint != "" }

// socketPath returns the unix socket path of a "unix://" endpoint, or the
// endpoint itself when it is a bare path.
func socketPath(endpoint string) string {
	return strings.TrimPrefix(endpoint, "unix://")
}
