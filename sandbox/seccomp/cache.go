package seccomp

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"cubby/sandbox/containerinit"
)

// cacheSize bounds the compiled filters a Cache keeps. Containers of a node
// use few distinct profiles (the default one per capability set, a handful
// of localhost ones), so a small cache hits almost always.
const cacheSize = 64

// Cache compiles profiles and remembers the result by the profile's
// content: compiling the default profile takes libseccomp tens of
// milliseconds, and most containers ask for the same one. Safe for
// concurrent use.
type Cache struct {
	mu      sync.Mutex
	filters map[[sha256.Size]byte]*containerinit.SeccompFilter
}

// NewCache returns an empty Cache.
func NewCache() *Cache {
	return &Cache{filters: map[[sha256.Size]byte]*containerinit.SeccompFilter{}}
}

// Compile is the package's Compile, cached. The returned filter is shared:
// callers must not change it.
func (c *Cache) Compile(profile *specs.LinuxSeccomp) (*containerinit.SeccompFilter, error) {
	if profile == nil {
		return nil, nil
	}
	b, err := json.Marshal(profile)
	if err != nil {
		return nil, fmt.Errorf("encode seccomp profile: %w", err)
	}
	key := sha256.Sum256(b)
	c.mu.Lock()
	f, ok := c.filters[key]
	c.mu.Unlock()
	if ok {
		return f, nil
	}
	f, err = Compile(profile)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.filters) >= cacheSize {
		// Rarely reached: start over rather than track recency.
		clear(c.filters)
	}
	c.filters[key] = f
	return f, nil
}
