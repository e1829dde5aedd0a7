package rootfs

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Auth holds registry credentials as CRI passes them.
type Auth struct {
	Username      string
	Password      string
	Auth          string // base64 "user:password"
	IdentityToken string
	RegistryToken string
}

func (a *Auth) authenticator() authn.Authenticator {
	if a == nil || *a == (Auth{}) {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username:      a.Username,
		Password:      a.Password,
		Auth:          a.Auth,
		IdentityToken: a.IdentityToken,
		RegistryToken: a.RegistryToken,
	})
}

// hostPolicy decides, per registry host, whether plain HTTP is allowed.
// Loopback registries and the configured insecure ones may use HTTP; for
// the configured ones TLS certificates are not verified either (Docker's
// "insecure-registries" semantics). Everything else is HTTPS only.
//
// Mirrors configured with an explicit http:// URL may use plain HTTP too.
type hostPolicy struct {
	insecure  map[string]bool // "host" or "host:port"
	plainHTTP map[string]bool // "host:port" of http:// mirrors
}

func newHostPolicy(insecure, plainHTTP []string) hostPolicy {
	p := hostPolicy{insecure: map[string]bool{}, plainHTTP: map[string]bool{}}
	for _, h := range insecure {
		p.insecure[strings.ToLower(h)] = true
	}
	for _, h := range plainHTTP {
		p.plainHTTP[strings.ToLower(h)] = true
	}
	return p
}

// isInsecure reports whether hostport is a configured insecure registry.
func (p hostPolicy) isInsecure(hostport string) bool {
	hostport = strings.ToLower(hostport)
	if p.insecure[hostport] {
		return true
	}
	host, _, err := net.SplitHostPort(hostport)
	return err == nil && p.insecure[host]
}

// allowsHTTP reports whether plain HTTP to hostport is allowed.
func (p hostPolicy) allowsHTTP(hostport string) bool {
	return p.isInsecure(hostport) || p.plainHTTP[strings.ToLower(hostport)] || isLoopback(hostport)
}

func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// policyTransport enforces hostPolicy on every request, including
// redirects and token requests that go-containerregistry makes on its own,
// and fails requests that make no progress for noProgress (0: never). It
// asks policy for the current one on every request, so that a reload
// applies to requests that follow it.
type policyTransport struct {
	policy     func() hostPolicy
	secure     http.RoundTripper
	noVerify   http.RoundTripper
	noProgress time.Duration
}

func newPolicyTransport(p func() hostPolicy, noProgress time.Duration) *policyTransport {
	base, ok := remote.DefaultTransport.(*http.Transport)
	if !ok {
		base = http.DefaultTransport.(*http.Transport)
	}
	secure := base.Clone()
	noVerify := base.Clone()
	noVerify.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // only for configured insecure registries
	return &policyTransport{policy: p, secure: secure, noVerify: noVerify, noProgress: noProgress}
}

func (t *policyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Host
	policy := t.policy()
	if req.URL.Scheme == "http" && !policy.allowsHTTP(host) {
		return nil, fmt.Errorf("plain http to %q refused: not a loopback or configured insecure registry", host)
	}
	next := t.secure
	if policy.isInsecure(host) {
		next = t.noVerify
	}
	return watch(next, req, t.noProgress)
}
