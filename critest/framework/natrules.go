package framework

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
)

// natChain matches the per-pod chain a CNI plugin jumps to from a NAT rule.
var natChain = regexp.MustCompile(`-j (CNI-[0-9a-f]+)$`)

// NATRules lists the nat table's POSTROUTING rules that CNI plugins (the
// bridge's ipMasq) made for pods of network: their comment names it. A
// removed pod has none left.
func NATRules(network string) ([]string, error) {
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S", "POSTROUTING").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || errors.Is(err, exec.ErrNotFound) {
			return nil, nil // no iptables here: nothing to leak
		}
		return nil, fmt.Errorf("list nat rules: %w", err)
	}
	marker := fmt.Sprintf(`name: \"%s\"`, network)
	var rules []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "-A ") && strings.Contains(line, marker) {
			rules = append(rules, line)
		}
	}
	return rules, nil
}

// RemoveNATRules deletes network's per-pod NAT rules and their chains, as a
// reboot would: a test that simulates one (a wiped state directory, whose
// netns files are gone, so CNI DEL cannot learn the pods' addresses) calls
// it, and every private daemon's cleanup does, reporting what it removed.
func RemoveNATRules(network string) ([]string, error) {
	rules, err := NATRules(network)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, rule := range rules {
		args := append([]string{"-w", "-t", "nat", "-D"}, splitRule(strings.TrimPrefix(rule, "-A "))...)
		if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("delete nat rule %q: %v: %s", rule, err, bytes.TrimSpace(out)))
			continue
		}
		if m := natChain.FindStringSubmatch(rule); m != nil {
			_ = exec.Command("iptables", "-w", "-t", "nat", "-F", m[1]).Run()
			_ = exec.Command("iptables", "-w", "-t", "nat", "-X", m[1]).Run()
		}
	}
	return rules, errors.Join(errs...)
}

// splitRule splits an iptables -S rule into arguments, keeping quoted
// strings (comments) whole and unescaping \".
func splitRule(s string) []string {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(s) && s[i+1] == '"':
			cur.WriteByte('"')
			i++
		case c == '"':
			inQuote = !inQuote
			have = true
		case c == ' ' && !inQuote:
			if have || cur.Len() > 0 {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
		}
	}
	if have || cur.Len() > 0 {
		args = append(args, cur.String())
	}
	return args
}
