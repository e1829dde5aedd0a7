package server

import (
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
)

// StreamInterceptor is UnaryInterceptor for server-streaming CRI calls:
// it recovers panics into errors, maps errors to gRPC codes, logs each
// call that fails and counts it in m (which may be nil).
func StreamInterceptor(log *slog.Logger, m *Metrics) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		start := time.Now()
		method := info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:]
		defer func() { m.observe(method, time.Since(start), false, nil, err) }()
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in CRI call", "method", info.FullMethod, "panic", r)
				err = toStatus(panicError{r})
			}
			if err != nil {
				log.Info("CRI call failed", "method", method, "duration", time.Since(start), "error", err)
			}
		}()
		return toStatus(handler(srv, ss))
	}
}
