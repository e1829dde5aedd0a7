// Command cubby-pod is the per-pod init that cubbyd starts for every pod
// sandbox: the pause process, the reaper and the CRI log writer at once (see
// sandbox/podinit). Re-executed as `cubby-pod init` it is the container init
// stage that becomes a container, as `cubby-pod exec` the exec stage that
// joins a running one (see sandbox/containerinit). As `cubby-pod keeper` it
// is the node's one parent of every pod init, which outlives cubbyd
// restarts (see sandbox/keeper).
//
// It is started by cubbyd only; its flags are not a user interface.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"

	"cubby/sandbox/containerinit"
	"cubby/sandbox/keeper"
	"cubby/sandbox/podinit"
)

// The main goroutine starts locked to the main thread, which the Go
// runtime never ends: the pod init forks its pod's PID 1 from it (see
// podinit.Run), and the init and exec stages keep every step on it.
func init() { runtime.LockOSThread() }

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case containerinit.InitArg:
			containerinit.Main() // never returns
		case containerinit.ExecArg:
			containerinit.ExecMain() // never returns
		case keeper.Arg:
			runtime.UnlockOSThread()
			keeper.Main() // never returns
		}
	}
	var cfg podinit.Config
	flag.StringVar(&cfg.ID, "id", "", "pod sandbox id")
	flag.StringVar(&cfg.Dir, "dir", "", "pod state directory")
	flag.StringVar(&cfg.Hostname, "hostname", "", "pod hostname")
	flag.BoolVar(&cfg.Loopback, "loopback", false, "bring up lo (the pod has a network namespace of its own)")
	flag.StringVar(&cfg.PidNamespace, "pidns", "", "make the pod's pid namespace and pin it at this path")
	flag.Func("sysctl", "sysctl key=value to set in the pod (repeatable)", func(v string) error {
		cfg.Sysctls = append(cfg.Sysctls, v)
		return nil
	})
	flag.IntVar(&cfg.ReadyFD, "ready-fd", 0, "fd to report readiness on")
	flag.Parse()
	if cfg.ID == "" || cfg.Dir == "" {
		fmt.Fprintln(os.Stderr, "cubby-pod: --id and --dir are required (it is started by cubbyd)")
		os.Exit(2)
	}
	if err := podinit.Run(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "cubby-pod %s: %v\n", cfg.ID, err)
		os.Exit(1)
	}
}
