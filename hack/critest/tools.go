//go:build tools

// Package critest pins cri-tools' critest so that `make critest` can build
// the upstream CRI validation suite without touching cubby's own go.mod.
package critest

import _ "sigs.k8s.io/cri-tools/cmd/critest"
