package server

import (
	"maps"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/sandbox"
)

// applyStdio records the container's CRI stdin and tty in its spec: a
// terminal for tty, an annotation for stdin (the pod init then keeps the
// container's stdin open for attach).
func applyStdio(spec *specs.Spec, cfg *runtimeapi.ContainerConfig) {
	spec.Process.Terminal = cfg.GetTty()
	if cfg.GetStdin() {
		a := maps.Clone(spec.Annotations)
		if a == nil {
			a = map[string]string{}
		}
		a[sandbox.AnnotationStdin] = "true"
		spec.Annotations = a
	}
}
