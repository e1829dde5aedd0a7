package netcni

import (
	"context"
	"fmt"
)

// Check asks the plugins whether the pod's attachments are still what ADD
// left (CNI CHECK): eth0 on the pod network and lo. It fails for a pod
// that is not set up.
func (m *Manager) Check(ctx context.Context, pod PodNetwork) error {
	if err := m.check(ctx, pod); err != nil {
		return fmt.Errorf("cni check for pod %q: %w", pod.ID, err)
	}
	return nil
}

func (m *Manager) check(ctx context.Context, pod PodNetwork) error {
	if err := validateID(pod.ID); err != nil {
		return err
	}
	defer m.pods.lock(pod.ID)()
	if !isNetNS(pod.NetNSPath) {
		return fmt.Errorf("%w: %q is not a network namespace", ErrInvalidArgument, pod.NetNSPath)
	}
	network, err := m.network()
	if err != nil {
		return err
	}
	ports, err := pod.portMappings()
	if err != nil {
		return err
	}
	if err := m.cni.CheckNetworkList(ctx, network, pod.runtimeConf(podIfName, pod.NetNSPath, ports)); err != nil {
		return fmt.Errorf("network %q: %w", network.Name, err)
	}
	return nil
}
