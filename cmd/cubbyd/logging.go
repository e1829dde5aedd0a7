package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
)

// newLogger logs to stderr at level in format (text or json); a reload
// changes both through the logSink. When stderr is the journal's stream (systemd sets
// JOURNAL_STREAM to its device and inode), each line starts with the
// level as a syslog priority ("<6>" for info) for journald to file it under,
// and carries no timestamp: the journal stamps every line itself.
func newLogger(level *slog.LevelVar, format string, stderr *os.File, journalStream string) *slog.Logger {
	return newLogSink(level, format, stderr, isJournalStream(stderr, journalStream)).logger()
}

// logSink is where cubbyd's log goes: a writer, a level and a format, the
// format switchable while loggers derived from it (With, WithGroup) are in
// use.
type logSink struct {
	level   *slog.LevelVar
	w       io.Writer
	journal bool // w is the journal's stream
	// base is the handler of the current format; derived handlers apply
	// their attributes and groups to it again when it changes.
	base atomic.Pointer[slog.Handler]
}

func newLogSink(level *slog.LevelVar, format string, w io.Writer, journal bool) *logSink {
	s := &logSink{level: level, w: w, journal: journal}
	s.setFormat(format)
	return s
}

// logger returns a logger writing to the sink.
func (s *logSink) logger() *slog.Logger {
	return slog.New(&switchHandler{sink: s})
}

// setFormat makes records from now on use format (text or json).
func (s *logSink) setFormat(format string) {
	opts := &slog.HandlerOptions{Level: s.level}
	handler := func(w io.Writer) slog.Handler {
		if format == "json" {
			return slog.NewJSONHandler(w, opts)
		}
		return slog.NewTextHandler(w, opts)
	}
	var h slog.Handler
	if s.journal {
		opts.ReplaceAttr = dropTime
		h = newJournalHandler(s.w, handler)
	} else {
		h = handler(s.w)
	}
	s.base.Store(&h)
}

// switchHandler is a handler of a logSink: its base handler with the
// attributes and groups of ops applied, redone once when the base changes.
type switchHandler struct {
	sink *logSink
	ops  []func(slog.Handler) slog.Handler
	memo atomic.Pointer[derived]
}

// derived is a switchHandler's handler for one base.
type derived struct {
	base *slog.Handler
	h    slog.Handler
}

func (h *switchHandler) handler() slog.Handler {
	base := h.sink.base.Load()
	if d := h.memo.Load(); d != nil && d.base == base {
		return d.h
	}
	out := *base
	for _, op := range h.ops {
		out = op(out)
	}
	h.memo.Store(&derived{base: base, h: out})
	return out
}

func (h *switchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.handler().Enabled(ctx, l)
}

func (h *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.handler().Handle(ctx, r)
}

func (h *switchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.with(func(b slog.Handler) slog.Handler { return b.WithAttrs(as) })
}

func (h *switchHandler) WithGroup(name string) slog.Handler {
	return h.with(func(b slog.Handler) slog.Handler { return b.WithGroup(name) })
}

func (h *switchHandler) with(op func(slog.Handler) slog.Handler) slog.Handler {
	ops := append(slices.Clip(h.ops), op)
	return &switchHandler{sink: h.sink, ops: ops}
}

// logLevel returns a level variable set to name ("info" when it does not
// parse).
func logLevel(name string) *slog.LevelVar {
	v := new(slog.LevelVar)
	if err := v.UnmarshalText([]byte(name)); err != nil {
		v.Set(slog.LevelInfo)
	}
	return v
}

// isJournalStream reports whether f is the stream JOURNAL_STREAM
// ("<device>:<inode>") names, as systemd.exec(5) advises checking: a child
// that inherited the variable but writes elsewhere is not.
func isJournalStream(f *os.File, journalStream string) bool {
	if journalStream == "" {
		return false
	}
	var dev, ino uint64
	if _, err := fmt.Sscanf(journalStream, "%d:%d", &dev, &ino); err != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == dev && st.Ino == ino
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// syslogPriority is the sd-daemon(3) prefix of a record's level.
func syslogPriority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>" // err
	case l >= slog.LevelWarn:
		return "<4>" // warning
	case l >= slog.LevelInfo:
		return "<6>" // info
	default:
		return "<7>" // debug
	}
}

// journalHandler prefixes each record of an inner text or JSON handler with
// its syslog priority. The inner handler formats into a buffer shared by
// the handlers derived with WithAttrs and WithGroup, under one lock, and
// each record reaches the writer in one write.
type journalHandler struct {
	inner slog.Handler
	out   *journalOut
}

type journalOut struct {
	mu  sync.Mutex
	buf bytes.Buffer
	w   io.Writer
}

func newJournalHandler(w io.Writer, handler func(io.Writer) slog.Handler) *journalHandler {
	out := &journalOut{w: w}
	return &journalHandler{inner: handler(&out.buf), out: out}
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	h.out.buf.Reset()
	h.out.buf.WriteString(syslogPriority(r.Level))
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	_, err := h.out.w.Write(h.out.buf.Bytes())
	return err
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{inner: h.inner.WithAttrs(as), out: h.out}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{inner: h.inner.WithGroup(name), out: h.out}
}
