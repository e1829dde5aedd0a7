package critest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestConcurrentLifecycle has parallel clients race create, start, exec,
// stop and remove of containers and stop and remove of their pods, on the
// same few pods. Any call may lose a race and fail with a clear code
// (NotFound, FailedPrecondition), but every call returns
// (no deadlock), the daemon survives (no panic), and what is left is
// consistent: every listed object answers its status, no container of a
// stopped pod runs, and removing everything leaves nothing on the host.
func TestConcurrentLifecycle(t *testing.T) {
	const pods, clients, rounds = 3, 8, 40
	env := suite.NewEnv(t)
	if !env.Private {
		t.Skip("checks a private cubbyd's process and host footprint")
	}
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	extraRef := pushChurnImage(t, reg)
	if err := churnCycle(framework.Context(t), env, reg.Ref, extraRef, -1); err != nil {
		t.Fatalf("warm-up cycle: %v", err)
	}
	footBefore := readHostFootprint(t, env)
	rs := env.RuntimeService()

	type podRef struct {
		id  string
		cfg *runtimeapi.PodSandboxConfig
	}
	var all []podRef
	for i := range pods {
		cfg := podConfig(fmt.Sprintf("race-%d", i), "")
		cfg.LogDirectory = ""
		all = append(all, podRef{id: runPod(t, env, cfg), cfg: cfg})
	}

	// Each call gets its own bound: one that outlives it is a hang.
	const callTimeout = 90 * time.Second
	var mu sync.Mutex
	codeCounts := map[string]int{}
	var hung []string
	call := func(what string, f func(context.Context) error) {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		err := f(ctx)
		mu.Lock()
		defer mu.Unlock()
		c := status.Code(err)
		codeCounts[what+" "+c.String()]++
		// A lost race is a clear error (NotFound, FailedPrecondition, …),
		// not an unclassified one.
		if c == codes.Unknown || c == codes.Internal {
			t.Errorf("%s: %v", what, err)
		}
		if c == codes.DeadlineExceeded || errors.Is(err, context.DeadlineExceeded) || c == codes.Unavailable {
			hung = append(hung, fmt.Sprintf("%s: %v", what, err))
		}
	}
	containersOf := func(ctx context.Context, podID string) []string {
		resp, err := rs.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: podID}})
		if err != nil {
			return nil
		}
		return containerIDs(resp.GetContainers())
	}

	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
			for r := range rounds {
				p := all[rnd.IntN(len(all))]
				// pick names a container of p; an unknown id when p has
				// none (a valid request that finds nothing).
				pick := func(ctx context.Context) string {
					ids := containersOf(ctx, p.id)
					if len(ids) == 0 {
						return strings.Repeat("0", 64)
					}
					return ids[rnd.IntN(len(ids))]
				}
				// The pods themselves are stopped and removed in the last
				// quarter only, racing what the others still do in them.
				n := 94
				if r >= rounds*3/4 {
					n = 100
				}
				switch op := rnd.IntN(n); {
				case op < 40:
					call("create+start", func(ctx context.Context) error {
						cfg := containerConfig(fmt.Sprintf("race-%d-%d", c, r), reg.Ref, "", "sleep", "4242")
						resp, err := rs.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.id, Config: cfg, SandboxConfig: p.cfg})
						if err != nil {
							return err
						}
						_, err = rs.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.GetContainerId()})
						return err
					})
				case op < 62:
					call("exec", func(ctx context.Context) error {
						_, err := rs.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: pick(ctx), Cmd: []string{"true"}, Timeout: 30})
						return err
					})
				case op < 77:
					call("stop", func(ctx context.Context) error {
						_, err := rs.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: pick(ctx), Timeout: 1})
						return err
					})
				case op < 92:
					call("remove", func(ctx context.Context) error {
						_, err := rs.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: pick(ctx)})
						return err
					})
				case op < 94:
					call("status", func(ctx context.Context) error {
						_, err := rs.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: pick(ctx)})
						return err
					})
				case op < 97:
					call("stop pod", func(ctx context.Context) error {
						_, err := rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id})
						return err
					})
				default:
					call("remove pod", func(ctx context.Context) error {
						_, err := rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id})
						return err
					})
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("calls by outcome: %v", codeCounts)
	for _, h := range hung {
		t.Errorf("call did not return or the daemon went away: %s", h)
	}
	if !env.Daemon.Running() {
		t.Fatal("cubbyd died during the race")
	}
	if log, err := os.ReadFile(env.Daemon.LogPath); err == nil && strings.Contains(string(log), "panic") {
		t.Error("cubbyd logged a panic during the race")
	}

	// What is left answers its status; a stopped pod runs nothing.
	ctx := framework.Context(t)
	for _, p := range all {
		st, err := rs.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id})
		if status.Code(err) == codes.NotFound {
			if ids := containersOf(ctx, p.id); len(ids) > 0 {
				t.Errorf("pod %q is removed but lists containers %q", p.id, ids)
			}
			continue
		}
		if err != nil {
			t.Errorf("status of pod %q: %v", p.id, err)
			continue
		}
		ready := st.GetStatus().GetState() == runtimeapi.PodSandboxState_SANDBOX_READY
		for _, id := range containersOf(ctx, p.id) {
			cs, err := rs.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
			if err != nil {
				t.Errorf("status of listed container %q: %v", id, err)
				continue
			}
			if !ready && cs.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Errorf("container %q runs in stopped pod %q", id, p.id)
			}
		}
	}
	for _, p := range all {
		removePod(t, env, p.id)
	}
	if extra := diffFootprint(footBefore, readHostFootprint(t, env)); len(extra) > 0 {
		t.Errorf("the race left %d things behind:\n%s", len(extra), strings.Join(extra, "\n"))
	}
}
