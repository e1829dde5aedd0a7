package server

import (
	"fmt"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// validatePodIdentity refuses a pod whose name, namespace or uid holds a NUL
// byte: they are handed to CNI plugins as environment variables and
// arguments, where a NUL cannot be represented (and no Kubernetes object
// name has one).
func validatePodIdentity(m *runtimeapi.PodSandboxMetadata) error {
	for _, f := range []struct{ field, value string }{
		{"name", m.GetName()},
		{"namespace", m.GetNamespace()},
		{"uid", m.GetUid()},
	} {
		if strings.ContainsRune(f.value, 0) {
			return fmt.Errorf("pod sandbox metadata.%s %q holds a NUL byte: %w", f.field, f.value, errInvalidArgument)
		}
	}
	return nil
}
