package netcni

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, bridges and iptables rules")
	}
}

// randHex returns n random hex digits.
func randHex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[rand.IntN(len(digits))]
	}
	return string(b)
}

// newNetNS creates a network namespace pinned to a file in a temp dir and
// removes it when the test ends.
func newNetNS(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		// The thread ends up in the new namespace: never unlock it, so
		// the runtime throws it away when this goroutine exits.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind %s: %w", src, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("create netns: %v", err)
	}
	t.Cleanup(func() { unpinNetNS(t, path) })
	return path
}

// unpinNetNS unmounts a netns created by newNetNS; the kernel destroys
// the namespace (and the veth ends in it) once nothing holds it.
func unpinNetNS(t *testing.T, path string) {
	t.Helper()
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		t.Errorf("unmount netns %s: %v", path, err)
	}
}

// inNetNS runs fn on a thread that has joined the namespace at path.
func inNetNS(t *testing.T, path string, fn func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread dies with the goroutine.
			errc <- fmt.Errorf("return to host netns: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// deleteLinkAtEnd removes a host link (the test's bridge) when the test
// ends, if it exists then.
func deleteLinkAtEnd(t *testing.T, name string) {
	t.Helper()
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join("/sys/class/net", name)); err != nil {
			return
		}
		if out, err := exec.Command("ip", "link", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip link del %s: %v: %s", name, err, out)
		}
	})
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// bridgePorts lists the links enslaved to a bridge.
func bridgePorts(t *testing.T, bridge string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("/sys/class/net", bridge, "brif"))
	if err != nil {
		t.Fatalf("list ports of %s: %v", bridge, err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func natRules(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables-save", "-t", "nat").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables-save: %v: %s", err, out)
	}
	return string(out)
}

// removePortmapChainsAtEnd undoes the host-wide chains the portmap plugin
// creates on its first ADD, if they did not exist before the test and no
// port forward is left in them when it ends. Another portmap user starting
// in that instant would race with it; tests on this machine do not share
// portmap with anything long-lived.
func removePortmapChainsAtEnd(t *testing.T) {
	t.Helper()
	if exec.Command("iptables", "-t", "nat", "-S", "CNI-HOSTPORT-DNAT").Run() == nil {
		return // someone else's: leave it
	}
	t.Cleanup(func() {
		out, err := exec.Command("iptables", "-t", "nat", "-S", "CNI-HOSTPORT-DNAT").Output()
		if err != nil {
			return // never created
		}
		if strings.TrimSpace(string(out)) != "-N CNI-HOSTPORT-DNAT" {
			return // forwards in use
		}
		steps := [][]string{
			{"-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
			{"-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"},
			{"-D", "POSTROUTING", "-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ"},
			{"-F", "CNI-HOSTPORT-MASQ"},
			{"-F", "CNI-HOSTPORT-SETMARK"},
			{"-X", "CNI-HOSTPORT-DNAT"},
			{"-X", "CNI-HOSTPORT-MASQ"},
			{"-X", "CNI-HOSTPORT-SETMARK"},
		}
		for _, s := range steps {
			if out, err := exec.Command("iptables", append([]string{"-t", "nat"}, s...)...).CombinedOutput(); err != nil {
				t.Logf("iptables -t nat %v: %v: %s", s, err, out)
			}
		}
	})
}
