package server

import (
	"fmt"
	"math"
	"math/big"
	"strings"

	"cubby/netcni"
)

// The pod annotations kubelet sets from the pod's traffic shaping
// annotations of the same names; values are Kubernetes quantities in bits
// per second ("10M", "1Gi").
const (
	ingressBandwidthAnnotation = "kubernetes.io/ingress-bandwidth"
	egressBandwidthAnnotation  = "kubernetes.io/egress-bandwidth"
)

// podBandwidth reads the pod's bandwidth annotations. The burst is left
// unlimited, as containerd and CRI-O do.
func podBandwidth(annotations map[string]string) (*netcni.Bandwidth, error) {
	var bw netcni.Bandwidth
	for _, a := range []struct {
		key         string
		rate, burst *uint64
	}{
		{ingressBandwidthAnnotation, &bw.IngressRate, &bw.IngressBurst},
		{egressBandwidthAnnotation, &bw.EgressRate, &bw.EgressBurst},
	} {
		v, ok := annotations[a.key]
		if !ok {
			continue
		}
		rate, err := parseQuantity(v)
		if err != nil || rate == 0 {
			return nil, fmt.Errorf("annotation %s=%q is not a bandwidth: %w", a.key, v, errInvalidArgument)
		}
		*a.rate, *a.burst = rate, math.MaxUint32
	}
	if bw == (netcni.Bandwidth{}) {
		return nil, nil
	}
	return &bw, nil
}

// quantitySuffixes are the Kubernetes quantity suffixes and their factors.
var quantitySuffixes = []struct {
	suffix string
	factor int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"Pi", 1 << 50}, {"Ei", 1 << 60},
	{"k", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"P", 1e15}, {"E", 1e18},
}

// parseQuantity parses a non-negative Kubernetes quantity ("1.5M", "10Mi",
// "500000", "1e6") and rounds it up to a whole number.
func parseQuantity(s string) (uint64, error) {
	num, factor := s, int64(1)
	for _, q := range quantitySuffixes {
		if n, ok := strings.CutSuffix(s, q.suffix); ok {
			num, factor = n, q.factor
			break
		}
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok || num == "" || r.Sign() < 0 {
		return 0, fmt.Errorf("quantity %q", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(factor))
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if new(big.Rat).SetInt(n).Cmp(r) < 0 {
		n.Add(n, big.NewInt(1))
	}
	if !n.IsUint64() {
		return 0, fmt.Errorf("quantity %q is too large", s)
	}
	return n.Uint64(), nil
}
