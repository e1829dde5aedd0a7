package seccomp

import (
	"fmt"
	"io"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"cubby/sandbox/containerinit"
)

// Compile turns profile into the BPF program the init stage installs. Its
// semantics are runc's: syscalls libseccomp does not know are skipped
// (profiles name syscalls of newer kernels and other architectures), rules
// whose action is the default action are redundant and skipped, conditions
// on distinct arguments must all hold, while several conditions on one
// argument each make a rule of their own, and syscalls newer than the
// profile fail with ENOSYS, not its default errno (enosys.go).
func Compile(profile *specs.LinuxSeccomp) (*containerinit.SeccompFilter, error) {
	if profile == nil {
		return nil, nil
	}
	if profile.ListenerPath != "" {
		return nil, fmt.Errorf("%w: seccomp notify listeners are not supported", ErrInvalidProfile)
	}
	defAction, err := action(profile.DefaultAction, profile.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("default action: %w", err)
	}
	flags, err := filterFlags(profile.Flags)
	if err != nil {
		return nil, err
	}
	f, err := libseccomp.NewFilter(defAction)
	if err != nil {
		return nil, fmt.Errorf("create seccomp filter: %w", err)
	}
	defer f.Release()
	for _, a := range profile.Architectures {
		arch, err := libseccomp.GetArchFromString(strings.TrimPrefix(string(a), "SCMP_ARCH_"))
		if err != nil {
			return nil, fmt.Errorf("%w: architecture %q: %v", ErrInvalidProfile, a, err)
		}
		if err := f.AddArch(arch); err != nil {
			return nil, fmt.Errorf("add architecture %q: %w", a, err)
		}
	}
	for i, rule := range profile.Syscalls {
		if err := addRule(f, defAction, rule); err != nil {
			return nil, fmt.Errorf("syscall rule %d (%s): %w", i, strings.Join(rule.Names, ","), err)
		}
	}
	prog, err := exportBPF(f)
	if err != nil {
		return nil, err
	}
	if prog, err = withENOSYSStub(profile, prog); err != nil {
		return nil, err
	}
	out := &containerinit.SeccompFilter{Flags: flags, Program: prog}
	if err := out.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidProfile, err)
	}
	return out, nil
}

// addRule adds one OCI syscall rule for each of its names.
func addRule(f *libseccomp.ScmpFilter, defAction libseccomp.ScmpAction, rule specs.LinuxSyscall) error {
	act, err := action(rule.Action, rule.ErrnoRet)
	if err != nil {
		return err
	}
	if act == defAction {
		return nil
	}
	conds, err := conditions(rule.Args)
	if err != nil {
		return err
	}
	for _, name := range rule.Names {
		call, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			continue // unknown to this libseccomp: nothing to filter
		}
		if len(conds) == 0 {
			if err := f.AddRule(call, act); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			continue
		}
		for _, c := range conds {
			if err := f.AddRuleConditional(call, act, c); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return nil
}

// conditions groups args into the condition lists of separate rules: one
// list of all conditions when each names a different argument, else one
// rule per condition (libseccomp cannot AND two tests of one argument).
func conditions(args []specs.LinuxSeccompArg) ([][]libseccomp.ScmpCondition, error) {
	if len(args) == 0 {
		return nil, nil
	}
	var all []libseccomp.ScmpCondition
	seen := map[uint]bool{}
	repeated := false
	for _, a := range args {
		op, err := operator(a.Op)
		if err != nil {
			return nil, err
		}
		var c libseccomp.ScmpCondition
		if op == libseccomp.CompareMaskedEqual {
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		} else {
			c, err = libseccomp.MakeCondition(a.Index, op, a.Value)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: argument %d: %v", ErrInvalidProfile, a.Index, err)
		}
		repeated = repeated || seen[a.Index]
		seen[a.Index] = true
		all = append(all, c)
	}
	if !repeated {
		return [][]libseccomp.ScmpCondition{all}, nil
	}
	out := make([][]libseccomp.ScmpCondition, len(all))
	for i, c := range all {
		out[i] = []libseccomp.ScmpCondition{c}
	}
	return out, nil
}

// action maps an OCI action; errnoRet is the errno of SCMP_ACT_ERRNO (and
// the message of SCMP_ACT_TRACE), EPERM when unset.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	ret := int16(unix.EPERM)
	if errnoRet != nil {
		ret = int16(*errnoRet)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return libseccomp.ActKillThread, nil
	case specs.ActKillProcess:
		return libseccomp.ActKillProcess, nil
	case specs.ActTrap:
		return libseccomp.ActTrap, nil
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(ret), nil
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(ret), nil
	case specs.ActAllow:
		return libseccomp.ActAllow, nil
	case specs.ActLog:
		return libseccomp.ActLog, nil
	}
	return libseccomp.ActInvalid, fmt.Errorf("%w: action %q is not supported", ErrInvalidProfile, a)
}

func operator(op specs.LinuxSeccompOperator) (libseccomp.ScmpCompareOp, error) {
	switch op {
	case specs.OpNotEqual:
		return libseccomp.CompareNotEqual, nil
	case specs.OpLessThan:
		return libseccomp.CompareLess, nil
	case specs.OpLessEqual:
		return libseccomp.CompareLessOrEqual, nil
	case specs.OpEqualTo:
		return libseccomp.CompareEqual, nil
	case specs.OpGreaterEqual:
		return libseccomp.CompareGreaterEqual, nil
	case specs.OpGreaterThan:
		return libseccomp.CompareGreater, nil
	case specs.OpMaskedEqual:
		return libseccomp.CompareMaskedEqual, nil
	}
	return libseccomp.CompareInvalid, fmt.Errorf("%w: operator %q is not supported", ErrInvalidProfile, op)
}

// filterFlags maps the profile's flags to seccomp(2)'s.
func filterFlags(names []specs.LinuxSeccompFlag) (uint, error) {
	var flags uint
	for _, n := range names {
		switch n {
		case specs.LinuxSeccompFlagLog:
			flags |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			flags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		default:
			return 0, fmt.Errorf("%w: flag %q is not supported", ErrInvalidProfile, n)
		}
	}
	return flags, nil
}

// exportBPF writes the filter's program through a memfd (libseccomp 2.5
// exports to an fd only) and reads it back.
func exportBPF(f *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("cubby-seccomp", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("export seccomp filter: %w", err)
	}
	file := os.NewFile(uintptr(fd), "cubby-seccomp")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("export seccomp filter: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("export seccomp filter: %w", err)
	}
	b, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("export seccomp filter: %w", err)
	}
	return b, nil
}
