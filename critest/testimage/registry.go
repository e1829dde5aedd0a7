package testimage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Repository and Tag name the image inside the registry.
const (
	Repository = "busybox"
	Tag        = "latest"
)

// Registry is an in-process OCI registry on a 127.0.0.1 listener that holds
// the busybox test image. Runtimes reach loopback registries over plain HTTP.
type Registry struct {
	// Host is "127.0.0.1:<port>".
	Host string
	// Ref is the image's tagged reference, "127.0.0.1:<port>/busybox:latest".
	Ref string
	// Digest is the manifest digest of the image.
	Digest v1.Hash

	srv  *http.Server
	done chan error
}

// DigestRef returns the image's reference by digest,
// "127.0.0.1:<port>/busybox@sha256:...".
func (r *Registry) DigestRef() string {
	return fmt.Sprintf("%s/%s@%s", r.Host, Repository, r.Digest)
}

// Serve starts a registry on a loopback listener and pushes img into it as
// busybox:latest. Close stops it.
func Serve(ctx context.Context, img v1.Image) (*Registry, error) {
	return serve(ctx, img, nil, authn.Anonymous)
}

// serve starts a registry whose handler wrap may guard (nil: none) and
// pushes img with auth.
func serve(ctx context.Context, img v1.Image, wrap func(h http.Handler, host string) http.Handler, auth authn.Authenticator) (*Registry, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for test registry: %w", err)
	}
	host := ln.Addr().String()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h, host)
	}
	r := &Registry{
		Host: host,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 30 * time.Second,
		},
		done: make(chan error, 1),
	}
	go func() { r.done <- r.srv.Serve(ln) }()

	r.Ref = fmt.Sprintf("%s/%s:%s", r.Host, Repository, Tag)
	ref, err := name.ParseReference(r.Ref, name.Insecure)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("parse reference %q: %w", r.Ref, err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuth(auth)); err != nil {
		r.Close()
		return nil, fmt.Errorf("push %q: %w", r.Ref, err)
	}
	if r.Digest, err = img.Digest(); err != nil {
		r.Close()
		return nil, fmt.Errorf("digest of %q: %w", r.Ref, err)
	}
	return r, nil
}

// Close stops the registry and waits for its server to return. Clients
// that keep a connection open without a request (a runtime's idle
// keep-alive pool) get it closed after a short grace period.
func (r *Registry) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = r.srv.Close()
	}
	if serr := <-r.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("stop test registry %s: %w", r.Host, err)
	}
	return nil
}

// ServeWrapped is Serve with the registry's handler wrapped by wrap, e.g.
// to count or refuse requests.
func ServeWrapped(ctx context.Context, img v1.Image, wrap func(h http.Handler) http.Handler) (*Registry, error) {
	return serve(ctx, img, func(h http.Handler, _ string) http.Handler { return wrap(h) }, authn.Anonymous)
}

// Push pushes img into the registry as repoTag ("pause:3.9"), so one
// registry can stand in for images of other names.
func (r *Registry) Push(ctx context.Context, img v1.Image, repoTag string) error {
	ref, err := name.ParseReference(r.Host+"/"+repoTag, name.Insecure)
	if err != nil {
		return fmt.Errorf("parse reference %q: %w", repoTag, err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("push %q: %w", repoTag, err)
	}
	return nil
}
