package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// eventBuffer is how many events a subscriber may fall behind before it is
// dropped.
const eventBuffer = 1024

// events fans container lifecycle events out to GetContainerEvents
// subscribers (kubelet's evented PLEG). Publishing never blocks: a
// subscriber whose buffer is full is cut off, and its stream ends with an
// error, so kubelet falls back to relisting.
type events struct {
	mu   sync.Mutex
	subs map[*eventSub]struct{}
}

type eventSub struct {
	ch      chan *runtimeapi.ContainerEventResponse
	dropped chan struct{} // closed when the subscriber fell behind
}

func (e *events) subscribe() *eventSub {
	sub := &eventSub{ch: make(chan *runtimeapi.ContainerEventResponse, eventBuffer), dropped: make(chan struct{})}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.subs == nil {
		e.subs = map[*eventSub]struct{}{}
	}
	e.subs[sub] = struct{}{}
	return sub
}

func (e *events) unsubscribe(sub *eventSub) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.subs, sub)
}

func (e *events) active() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.subs) > 0
}

func (e *events) publish(ev *runtimeapi.ContainerEventResponse) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for sub := range e.subs {
		select {
		case sub.ch <- ev:
		default:
			delete(e.subs, sub)
			close(sub.dropped)
		}
	}
}

// GetContainerEvents streams container events until the client goes away.
func (s *Server) GetContainerEvents(_ *runtimeapi.GetEventsRequest, stream runtimeapi.RuntimeService_GetContainerEventsServer) error {
	sub := s.events.subscribe()
	defer s.events.unsubscribe(sub)
	for {
		select {
		case ev := <-sub.ch:
			if err := stream.Send(ev); err != nil {
				return err
			}
		case <-sub.dropped:
			return toStatus(fmt.Errorf("event subscriber fell %d events behind and was dropped: %w", eventBuffer, errResourceExhausted))
		case <-stream.Context().Done():
			return nil
		case <-s.ctx.Done():
			return nil
		}
	}
}

// emitContainerEvent publishes event typ of container c with its pod's
// status and the status of every container in the pod.
func (s *Server) emitContainerEvent(c *container, typ runtimeapi.ContainerEventType) {
	if !s.events.active() {
		return
	}
	ctx := context.Background()
	podID := c.status().PodID
	ev := &runtimeapi.ContainerEventResponse{
		ContainerId:        c.id,
		ContainerEventType: typ,
		CreatedAt:          time.Now().UnixNano(),
	}
	if resp, err := s.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID}); err == nil {
		ev.PodSandboxStatus = resp.GetStatus()
	}
	for _, pc := range s.objs.podContainers(podID) {
		if resp, err := s.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: pc.id}); err == nil {
			ev.ContainersStatuses = append(ev.ContainersStatuses, resp.GetStatus())
		}
	}
	s.events.publish(ev)
}
