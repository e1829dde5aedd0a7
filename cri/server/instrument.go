package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
)

// UnaryInterceptor is the one wrapper around every CRI call: it recovers
// panics into errors, maps errors to gRPC codes, logs each call and records
// it in m (which may be nil).
func UnaryInterceptor(log *slog.Logger, m *Metrics) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		method := info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:]
		// Deferred first, so it runs last: it sees a recovered panic's error.
		defer func() { m.observe(method, time.Since(start), true, resp, err) }()
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in CRI call", "method", info.FullMethod, "panic", r)
				resp, err = nil, toStatus(panicError{r})
			}
		}()
		resp, err = handler(ctx, req)
		err = toStatus(err)
		if err != nil {
			log.Info("CRI call failed", "method", method, "duration", time.Since(start), "error", err)
		} else if !quiet[method] {
			log.Debug("CRI call", "method", method, "duration", time.Since(start))
		}
		return resp, err
	}
}

// quiet are polled calls not worth a debug line each.
var quiet = map[string]bool{"ListPodSandbox": true, "ListContainers": true, "Status": true, "Version": true, "ListImages": true, "ImageFsInfo": true}

type panicError struct{ v any }

func (p panicError) Error() string { return "internal error: " + fmt.Sprint(p.v) }
