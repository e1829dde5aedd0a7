package server

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cri/store"
)

// pod is a pod sandbox in memory. config is immutable; rec changes only
// through update.
type pod struct {
	id     string
	name   string // registrar key
	config *runtimeapi.PodSandboxConfig
	// created is closed when RunPodSandbox has finished with this pod,
	// successfully or not.
	created chan struct{}

	mu  sync.Mutex
	rec store.Pod
}

// status returns a copy of the pod's record.
func (p *pod) status() store.Pod {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rec
	r.IPs = append([]string(nil), r.IPs...)
	ns := make(map[string]string, len(r.Namespaces))
	for k, v := range r.Namespaces {
		ns[k] = v
	}
	r.Namespaces = ns
	return r
}

// update applies fn to a copy of the record, persists it, and only then
// makes it the pod's record: memory never runs ahead of disk.
func (p *pod) update(db *store.DB, fn func(*store.Pod)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rec
	fn(&r)
	if err := db.PutPod(r); err != nil {
		return err
	}
	p.rec = r
	return nil
}

// container is a container in memory, like pod.
type container struct {
	id     string
	name   string // registrar key
	config *runtimeapi.ContainerConfig
	// exited is closed once the container's exit is recorded.
	exited   chan struct{}
	exitOnce sync.Once

	mu  sync.Mutex
	rec store.Container
}

func (c *container) status() store.Container {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec
}

func (c *container) update(db *store.DB, fn func(*store.Container)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rec
	fn(&r)
	if err := db.PutContainer(r); err != nil {
		return err
	}
	c.rec = r
	return nil
}

func (c *container) markExited() { c.exitOnce.Do(func() { close(c.exited) }) }

// objects indexes pods and containers by id and by name. The name index is
// the registrar: a name belongs to one id until the object is removed.
type objects struct {
	mu       sync.RWMutex
	pods     map[string]*pod
	ctrs     map[string]*container
	podNames map[string]string
	ctrNames map[string]string
}

func newObjects() *objects {
	return &objects{
		pods:     map[string]*pod{},
		ctrs:     map[string]*container{},
		podNames: map[string]string{},
		ctrNames: map[string]string{},
	}
}

// addPod registers p under name. If the name is taken it returns the pod
// holding it instead.
func (o *objects) addPod(p *pod) (existing *pod) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if id, ok := o.podNames[p.name]; ok {
		return o.pods[id]
	}
	o.podNames[p.name] = p.id
	o.pods[p.id] = p
	return nil
}

func (o *objects) removePod(p *pod) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.podNames[p.name] == p.id {
		delete(o.podNames, p.name)
	}
	delete(o.pods, p.id)
}

func (o *objects) addContainer(c *container) (existing *container) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if id, ok := o.ctrNames[c.name]; ok {
		return o.ctrs[id]
	}
	o.ctrNames[c.name] = c.id
	o.ctrs[c.id] = c
	return nil
}

func (o *objects) removeContainer(c *container) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ctrNames[c.name] == c.id {
		delete(o.ctrNames, c.name)
	}
	delete(o.ctrs, c.id)
}

// pod finds a pod by id or unique id prefix (crictl sends prefixes).
func (o *objects) pod(id string) (*pod, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return lookup(o.pods, id, "pod sandbox")
}

func (o *objects) container(id string) (*container, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return lookup(o.ctrs, id, "container")
}

func lookup[T any](m map[string]T, id, kind string) (T, error) {
	var zero T
	if id == "" {
		return zero, fmt.Errorf("%s id is empty: %w", kind, errInvalidArgument)
	}
	if v, ok := m[id]; ok {
		return v, nil
	}
	var found []string
	for k := range m {
		if strings.HasPrefix(k, id) {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return zero, fmt.Errorf("%s %q: %w", kind, id, errNotFound)
	case 1:
		return m[found[0]], nil
	default:
		return zero, fmt.Errorf("%s id prefix %q is ambiguous: %w", kind, id, errInvalidArgument)
	}
}

// podList returns all pods sorted by id.
func (o *objects) podList() []*pod {
	o.mu.RLock()
	out := make([]*pod, 0, len(o.pods))
	for _, p := range o.pods {
		out = append(out, p)
	}
	o.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (o *objects) containerList() []*container {
	o.mu.RLock()
	out := make([]*container, 0, len(o.ctrs))
	for _, c := range o.ctrs {
		out = append(out, c)
	}
	o.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// podContainers returns the containers of pod podID.
func (o *objects) podContainers(podID string) []*container {
	var out []*container
	for _, c := range o.containerList() {
		if c.status().PodID == podID {
			out = append(out, c)
		}
	}
	return out
}

// podName is the registrar key of a pod, as kubelet makes names unique.
func podName(m *runtimeapi.PodSandboxMetadata) string {
	return strings.Join([]string{m.Name, m.Namespace, m.Uid, fmt.Sprint(m.Attempt)}, "_")
}

// containerName is the registrar key of a container in its pod.
func containerName(m *runtimeapi.ContainerMetadata, pm *runtimeapi.PodSandboxMetadata) string {
	return strings.Join([]string{m.Name, pm.Name, pm.Namespace, pm.Uid, fmt.Sprint(m.Attempt)}, "_")
}
