package containerinit

import (
	"fmt"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Capabilities are named, numbered and applied by
// github.com/moby/sys/capability, as in runc.

// capSets are the process's capability sets from the spec.
type capSets map[capability.CapType][]capability.Cap

// parseCapSets turns the spec's capability names into capabilities; every
// name must be known (capabilities newer than the running kernel are kept
// and simply have no effect).
func parseCapSets(c *specs.LinuxCapabilities) (capSets, error) {
	if c == nil {
		c = &specs.LinuxCapabilities{}
	}
	out := capSets{}
	for t, names := range map[capability.CapType][]string{
		capability.BOUNDING:    c.Bounding,
		capability.EFFECTIVE:   c.Effective,
		capability.PERMITTED:   c.Permitted,
		capability.INHERITABLE: c.Inheritable,
		capability.AMBIENT:     c.Ambient,
	} {
		caps, err := parseCaps(names)
		if err != nil {
			return nil, err
		}
		out[t] = caps
	}
	return out, nil
}

// parseCaps maps OCI capability names ("CAP_CHOWN", any case) to
// capabilities.
func parseCaps(names []string) ([]capability.Cap, error) {
	if len(names) == 0 {
		return nil, nil
	}
	byName := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		byName["CAP_"+strings.ToUpper(c.String())] = c
	}
	out := make([]capability.Cap, 0, len(names))
	for _, n := range names {
		c, ok := byName[strings.ToUpper(n)]
		if !ok {
			return nil, fmt.Errorf("%w: unknown capability %q", ErrInvalidSpec, n)
		}
		out = append(out, c)
	}
	return out, nil
}

// ownCaps loads this thread's capability state.
func ownCaps() (capability.Capabilities, error) {
	p, err := capability.NewPid2(0)
	if err != nil {
		return nil, fmt.Errorf("capabilities: %w", err)
	}
	if err := p.Load(); err != nil {
		return nil, fmt.Errorf("read capabilities: %w", err)
	}
	return p, nil
}

// dropBounding removes every capability outside s's bounding set from this
// thread's bounding set, which execve inherits. It needs CAP_SETPCAP, so it
// runs before the user switch.
func dropBounding(s capSets) error {
	p, err := ownCaps()
	if err != nil {
		return err
	}
	p.Clear(capability.BOUNDING)
	p.Set(capability.BOUNDING, s[capability.BOUNDING]...)
	if err := p.Apply(capability.BOUNDING); err != nil {
		return fmt.Errorf("drop capabilities from the bounding set: %w", err)
	}
	return nil
}

// applyCaps sets this thread's effective, permitted and inheritable sets
// (capset), then its ambient set. They are per thread, so this runs on the
// thread that will execve.
func applyCaps(s capSets) error {
	p, err := ownCaps()
	if err != nil {
		return err
	}
	p.Clear(capability.CAPS)
	for _, t := range []capability.CapType{capability.EFFECTIVE, capability.PERMITTED, capability.INHERITABLE} {
		p.Set(t, s[t]...)
	}
	if err := p.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if err := capability.ResetAmbient(); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	if a := s[capability.AMBIENT]; len(a) > 0 {
		if err := capability.SetAmbient(true, a...); err != nil {
			return fmt.Errorf("raise ambient capabilities: %w", err)
		}
	}
	return nil
}
