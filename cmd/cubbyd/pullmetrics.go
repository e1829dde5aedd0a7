package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// pullMetrics are the image pull metrics; it is the image store's
// rootfs.PullObserver.
type pullMetrics struct {
	pulls         *prometheus.CounterVec
	duration      prometheus.Histogram
	bytes         prometheus.Counter
	inFlight      prometheus.Gauge
	bytesInFlight prometheus.Gauge
}

// pullBuckets span a cached pull (10ms) to a large image (an hour).
var pullBuckets = prometheus.ExponentialBuckets(0.01, 4, 10)

// newPullMetrics creates the pull metrics and registers them with reg.
func newPullMetrics(reg prometheus.Registerer) (*pullMetrics, error) {
	m := &pullMetrics{
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cubby_image_pulls_total",
			Help: "Image pulls from registries by result: success, failure or canceled (the caller went away or its deadline passed).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cubby_image_pull_duration_seconds",
			Help:    "Time an image pull took, whatever its result.",
			Buckets: pullBuckets,
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cubby_image_pull_bytes_total",
			Help: "Bytes received from registries by image pulls (manifests, configs and layer blobs).",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cubby_image_pulls_in_flight",
			Help: "Image pulls running now.",
		}),
		bytesInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cubby_image_pull_bytes_in_flight",
			Help: "Bytes received so far by the image pulls running now.",
		}),
	}
	for _, c := range []prometheus.Collector{m.pulls, m.duration, m.bytes, m.inFlight, m.bytesInFlight} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register pull metrics: %w", err)
		}
	}
	return m, nil
}

func (m *pullMetrics) PullStarted(string) { m.inFlight.Inc() }

func (m *pullMetrics) PullBytes(n int64) {
	m.bytes.Add(float64(n))
	m.bytesInFlight.Add(float64(n))
}

func (m *pullMetrics) PullDone(_ string, err error, took time.Duration, n int64) {
	m.inFlight.Dec()
	m.bytesInFlight.Sub(float64(n))
	m.duration.Observe(took.Seconds())
	m.pulls.WithLabelValues(pullResult(err)).Inc()
}

func pullResult(err error) string {
	switch {
	case err == nil:
		return "success"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	default:
		return "failure"
	}
}
