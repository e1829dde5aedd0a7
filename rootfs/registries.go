package rootfs

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// RegistryConfig says how images of one upstream registry are fetched.
type RegistryConfig struct {
	// Mirrors are endpoints tried in order before the upstream, each
	// "http://host[:port]" (plain HTTP), "https://host[:port]" or a bare
	// "host[:port]" (HTTPS). A mirror serves the upstream's repositories
	// under the same names: registry.k8s.io/pause:3.9 is fetched as
	// <mirror>/pause:3.9, docker.io/library/busybox as
	// <mirror>/library/busybox. Credentials from the pull request are sent
	// to the upstream only, never to a mirror.
	Mirrors []string
	// SkipUpstream never contacts the upstream: only the mirrors are
	// tried (air-gapped nodes).
	SkipUpstream bool
}

// endpoint is one place an image can be fetched from.
type endpoint struct {
	host      string // "host[:port]" as ggcr spells registries
	plainHTTP bool   // an explicit http:// mirror
	mirror    bool
}

func (e endpoint) String() string {
	if e.plainHTTP {
		return "http://" + e.host
	}
	return e.host
}

// registryKey maps the spellings of a registry host to ggcr's one:
// "docker.io" and "index.docker.io" are both Docker Hub.
func registryKey(host string) string {
	host = strings.ToLower(host)
	if host == dockerHub {
		return dockerHubIndex
	}
	return host
}

// parseMirror parses one Mirrors entry.
func parseMirror(s string) (endpoint, error) {
	raw := s
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return endpoint{}, fmt.Errorf("%w: mirror %q: %v", ErrInvalidArgument, raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return endpoint{}, fmt.Errorf("%w: mirror %q: want http://host[:port] or https://host[:port]", ErrInvalidArgument, raw)
	}
	if _, err := name.NewRegistry(u.Host); err != nil {
		return endpoint{}, fmt.Errorf("%w: mirror %q: %v", ErrInvalidArgument, raw, err)
	}
	return endpoint{host: strings.ToLower(u.Host), plainHTTP: u.Scheme == "http", mirror: true}, nil
}

// registryHosts is the parsed Config.Registries, keyed by registryKey.
type registryHosts map[string]hostEndpoints

type hostEndpoints struct {
	mirrors      []endpoint
	skipUpstream bool
}

func parseRegistries(cfg map[string]RegistryConfig) (registryHosts, error) {
	out := registryHosts{}
	for host, rc := range cfg {
		if _, err := name.NewRegistry(host); err != nil || host == "" {
			return nil, fmt.Errorf("%w: registry %q: not a registry host", ErrInvalidArgument, host)
		}
		var he hostEndpoints
		for _, m := range rc.Mirrors {
			ep, err := parseMirror(m)
			if err != nil {
				return nil, fmt.Errorf("registry %q: %w", host, err)
			}
			he.mirrors = append(he.mirrors, ep)
		}
		if rc.SkipUpstream && len(he.mirrors) == 0 {
			return nil, fmt.Errorf("%w: registry %q: skip_upstream without mirrors would make it unreachable", ErrInvalidArgument, host)
		}
		he.skipUpstream = rc.SkipUpstream
		out[registryKey(host)] = he
	}
	return out, nil
}

// endpoints lists where to fetch images of the upstream registry, in the
// order to try them.
func (h registryHosts) endpoints(upstream string) []endpoint {
	he := h[registryKey(upstream)]
	eps := append([]endpoint(nil), he.mirrors...)
	if !he.skipUpstream {
		eps = append(eps, endpoint{host: upstream})
	}
	return eps
}

// plainHTTPHosts are the mirrors configured with an http:// URL.
func (h registryHosts) plainHTTPHosts() []string {
	var out []string
	for _, he := range h {
		for _, m := range he.mirrors {
			if m.plainHTTP {
				out = append(out, m.host)
			}
		}
	}
	return out
}

// at returns r with its registry replaced by ep's host; the repository
// path and the tag or digest stay.
func (ep endpoint) at(r name.Reference, opts ...name.Option) (name.Reference, error) {
	if !ep.mirror {
		return name.ParseReference(r.String(), opts...)
	}
	repo := ep.host + "/" + r.Context().RepositoryStr()
	sep := ":"
	if _, ok := r.(name.Digest); ok {
		sep = "@"
	}
	return name.ParseReference(repo+sep+r.Identifier(), opts...)
}

// registrySettings are the registry settings of a Store that SetRegistries
// replaces whole: the mirrors and the policy that follows from them and
// the insecure registries.
type registrySettings struct {
	hosts  registryHosts
	policy hostPolicy
}

func newRegistrySettings(insecure []string, registries map[string]RegistryConfig) (*registrySettings, error) {
	hosts, err := parseRegistries(registries)
	if err != nil {
		return nil, err
	}
	return &registrySettings{hosts: hosts, policy: newHostPolicy(insecure, hosts.plainHTTPHosts())}, nil
}

// SetRegistries replaces the insecure registries and the per-registry
// mirrors, as Config's fields of the same names, while the store serves:
// pulls that start afterwards use the new settings, a pull under way keeps
// the mirrors it started with, and every registry request checks plain HTTP
// against the settings current when it is made. Invalid settings are
// refused and the old ones stay.
func (s *Store) SetRegistries(insecure []string, registries map[string]RegistryConfig) error {
	settings, err := newRegistrySettings(insecure, registries)
	if err != nil {
		return err
	}
	s.registries.Store(settings)
	return nil
}
