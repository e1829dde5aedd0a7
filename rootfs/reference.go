package rootfs

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

const (
	dockerHub      = "docker.io"
	dockerHubIndex = name.DefaultRegistry // "index.docker.io", ggcr's spelling
)

var hexID = regexp.MustCompile(`^[a-f0-9]{64}$`)

// NormalizeReference returns the canonical form of an image reference, the
// one used in Image.RepoTags and Image.RepoDigests:
//
//	busybox                      -> docker.io/library/busybox:latest
//	127.0.0.1:5000/x             -> 127.0.0.1:5000/x:latest
//	quay.io/a/b@sha256:<hex>     -> quay.io/a/b@sha256:<hex>
//	busybox:1.36@sha256:<hex>    -> docker.io/library/busybox@sha256:<hex>
//
// A malformed reference returns an error wrapping ErrInvalidReference.
func NormalizeReference(ref string) (string, error) {
	r, err := parseReference(ref)
	if err != nil {
		return "", err
	}
	return canonical(r), nil
}

func parseReference(ref string) (name.Reference, error) {
	if ref == "" || strings.TrimSpace(ref) != ref {
		return nil, fmt.Errorf("%w: %q", ErrInvalidReference, ref)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidReference, ref, err)
	}
	return r, nil
}

// canonical renders r with Docker Hub spelled "docker.io", as kubelet and
// crictl users expect.
func canonical(r name.Reference) string {
	repo := repoName(r.Context())
	if d, ok := r.(name.Digest); ok {
		return repo + "@" + d.DigestStr()
	}
	return repo + ":" + r.Identifier()
}

func repoName(repo name.Repository) string {
	reg := repo.RegistryStr()
	if reg == dockerHubIndex {
		reg = dockerHub
	}
	return reg + "/" + repo.RepositoryStr()
}

// parseImageID accepts "sha256:<hex>" or a bare 64-digit hex and returns
// the "sha256:<hex>" form.
func parseImageID(s string) (string, bool) {
	hex := strings.TrimPrefix(s, "sha256:")
	if !hexID.MatchString(hex) {
		return "", false
	}
	return "sha256:" + hex, true
}
