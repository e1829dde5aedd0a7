package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMetricsHandler(t *testing.T) {
	reg, err := newMetricsRegistry()
	if err != nil {
		t.Fatal(err)
	}
	var broken error
	h := metricsHandler(reg, slog.New(slog.NewTextHandler(io.Discard, nil)), func(context.Context) error { return broken })
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	for _, want := range []string{"go_goroutines ", "process_open_fds ", `cubby_build_info{commit="`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code, body := get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("healthy /healthz: %d %q", code, body)
	}
	broken = errors.New("store is stuck")
	if code, body := get("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "store is stuck") {
		t.Errorf("unhealthy /healthz: %d %q", code, body)
	}
	if code, _ := get("/other"); code != http.StatusNotFound {
		t.Errorf("/other: %d, want 404", code)
	}
}

func TestMetricsAddressValidated(t *testing.T) {
	for addr, ok := range map[string]bool{
		"":                true, // off
		"127.0.0.1:9090":  true,
		":9090":           true,
		"[::1]:0":         true,
		"localhost:9090":  true,
		"127.0.0.1":       false,
		"127.0.0.1:http":  false,
		"127.0.0.1:70000": false,
	} {
		c := defaultConfig()
		c.Metrics.Address = addr
		ps := validateConfig(c)
		if (len(ps) == 0) != ok {
			t.Errorf("metrics.address %q: problems %v, want ok=%v", addr, ps, ok)
		}
	}
}

func TestListenMetricsNamesTheSetting(t *testing.T) {
	_, err := listenMetrics("192.0.2.1:1") // TEST-NET-1: no host has it
	if err == nil || !strings.Contains(err.Error(), `metrics.address "192.0.2.1:1"`) {
		t.Errorf("listenMetrics on a foreign address: %v", err)
	}
}
