package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"cubby/cmd/internal/buildinfo"
	"cubby/sandbox"
)

// healthzTimeout bounds one /healthz check.
const healthzTimeout = 5 * time.Second

// newMetricsRegistry holds the Go runtime and process metrics and
// cubby_build_info; the CRI server adds its own.
func newMetricsRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	info := buildinfo.Get()
	build := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "cubby_build_info",
		Help:        "Always 1; the labels name the running cubbyd build.",
		ConstLabels: prometheus.Labels{"version": info.Version, "commit": info.Commit, "goversion": info.GoVersion},
	}, func() float64 { return 1 })
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return reg, nil
}

// metricsHandler serves /metrics from reg and /healthz, which answers 200
// only while check passes.
func metricsHandler(reg *prometheus.Registry, log *slog.Logger, check func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Registry:          reg, // counts its own scrapes and errors
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), healthzTimeout)
		defer cancel()
		if err := check(ctx); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// listenMetrics opens the metrics listener; a bad address fails start-up.
func listenMetrics(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.address %q: %w", addr, err)
	}
	return ln, nil
}

// keeperRestarts counts the pod init keepers started to replace one that
// died while cubbyd ran.
func keeperRestarts(rt *sandbox.Runtime) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "cubby_pod_keeper_restarts_total",
		Help: "Pod init keepers started to replace one that died while cubbyd ran (its pod inits went to cubbyd, which reaps them).",
	}, func() float64 { return float64(rt.KeeperRestarts()) })
}
