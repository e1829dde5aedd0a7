package server

import (
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cubby has one way to run pods. It answers to the default handler ("")
// and to its own name, so a RuntimeClass with handler "cubby" works too.
var handlerNames = []string{"", runtimeName}

// checkRuntimeHandler rejects a handler cubby does not have.
func checkRuntimeHandler(h string) error {
	for _, n := range handlerNames {
		if h == n {
			return nil
		}
	}
	return fmt.Errorf("runtime handler %q is not configured (cubby serves %q and the default \"\"): %w", h, runtimeName, errNotFound)
}

// runtimeHandlers lists the handlers with the features they really have:
// recursive read-only mounts (mount_setattr, Linux 5.12), no user
// namespaces yet.
func runtimeHandlers() []*runtimeapi.RuntimeHandler {
	out := make([]*runtimeapi.RuntimeHandler, 0, len(handlerNames))
	for _, n := range handlerNames {
		out = append(out, &runtimeapi.RuntimeHandler{Name: n, Features: &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: true}})
	}
	return out
}
