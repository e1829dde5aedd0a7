package server

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

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
	// stopping is set (in memory only) once StopPodSandbox begins: the
	// pod init exits because it was told to, not because it died.
	stopping atomic.Bool
	// lifecycle serializes stop and remove of the pod and joins
	// concurrent stops; not the status lock.
	lifecycle *podLifecycle

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
	// created is closed when CreateContainer has finished with this
	// container, successfully or not.
	created chan struct{}
	// exited is closed once the container's exit is recorded.
	exited   chan struct{}
	exitOnce sync.Once
	// updating serializes resource updates, which rewrite the bundle; it is
	// not the status lock, so List calls never wait on them.
	updating sync.Mutex
	// lifecycle serializes create, start and remove, so that a remove
	// never tears down what a create or a start is still building (nor a
	// start runs what a remove took apart). Not the status lock either.
	lifecycle sync.Mutex

	// user is who the container's process runs as, from its spec: set at
	// create, or read from the bundle on first use after a restart.
	user atomic.Pointer[runtimeapi.ContainerUser]
	// execs counts the execs running in the container (execSlot).
	execs atomic.Int32

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

// closedChan returns a closed channel: for objects loaded from the store,
// whose creation finished in an earlier life of cubbyd.
func closedChan() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// updateInMemory applies fn to the record without persisting it: only for
// a fact that is already true on the host (an exit) when the store keeps
// failing; disk catches up from the pod init's records at the next start.
func (c *container) updateInMemory(fn func(*store.Container)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(&c.rec)
}

func (c *container) markExited() { c.exitOnce.Do(func() { close(c.exited) }) }

// registered is what a registry indexes: an object with an id and a name.
type registered interface {
	comparable
	key() (id, name string)
}

func (p *pod) key() (string, string)       { return p.id, p.name }
func (c *container) key() (string, string) { return c.id, c.name }

// registry indexes objects by id and by name. The name index is the
// registrar: a name belongs to one id until its object is removed.
type registry[T registered] struct {
	mu     sync.RWMutex
	byID   map[string]T
	byName map[string]string
	kind   string
}

func newRegistry[T registered](kind string) *registry[T] {
	return &registry[T]{byID: map[string]T{}, byName: map[string]string{}, kind: kind}
}

// add registers v. If its name is taken it returns the object holding it
// instead, and ok is false.
func (r *registry[T]) add(v T) (existing T, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, name := v.key()
	if holder, taken := r.byName[name]; taken {
		return r.byID[holder], false
	}
	r.byName[name] = id
	r.byID[id] = v
	return existing, true
}

func (r *registry[T]) remove(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, name := v.key()
	if r.byName[name] == id {
		delete(r.byName, name)
	}
	delete(r.byID, id)
}

// get finds an object by id or unique id prefix (crictl sends prefixes).
func (r *registry[T]) get(id string) (T, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return lookup(r.byID, id, r.kind)
}

// list returns all objects sorted by id.
func (r *registry[T]) list() []T {
	r.mu.RLock()
	out := make([]T, 0, len(r.byID))
	ids := make([]string, 0, len(r.byID))
	for id := range r.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		out = append(out, r.byID[id])
	}
	r.mu.RUnlock()
	return out
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

// objects are the pods and containers cubbyd knows.
type objects struct {
	pods *registry[*pod]
	ctrs *registry[*container]
}

func newObjects() *objects {
	return &objects{pods: newRegistry[*pod]("pod sandbox"), ctrs: newRegistry[*container]("container")}
}

// podContainers returns the containers of pod podID.
func (o *objects) podContainers(podID string) []*container {
	var out []*container
	for _, c := range o.ctrs.list() {
		if c.status().PodID == podID {
			out = append(out, c)
		}
	}
	return out
}

// podName is the registrar key of a pod, as kubelet makes names unique.
func podName(m *runtimeapi.PodSandboxMetadata) string {
	return nameKey(m.Name, m.Namespace, m.Uid, fmt.Sprint(m.Attempt))
}

// containerName is the registrar key of a container in its pod.
func containerName(m *runtimeapi.ContainerMetadata, pm *runtimeapi.PodSandboxMetadata) string {
	return nameKey(m.Name, pm.Name, pm.Namespace, pm.Uid, fmt.Sprint(m.Attempt))
}

// keyEscaper escapes the separator of a name key (and the escape itself)
// inside a part, so that different tuples never make one key: CRI does not
// forbid "_" in names, and ("a_b", "c") must not collide with ("a", "b_c").
var keyEscaper = strings.NewReplacer("%", "%25", "_", "%5F")

// nameKey joins parts with "_" as kubelet's names read, escaping each.
func nameKey(parts ...string) string {
	for i, p := range parts {
		parts[i] = keyEscaper.Replace(p)
	}
	return strings.Join(parts, "_")
}
