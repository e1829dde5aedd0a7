package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
)

// newLogger logs to stderr at level (a *slog.LevelVar that a reload sets)
// in format (text or json). When stderr is the journal's stream (systemd sets
// JOURNAL_STREAM to its device and inode), each line starts with the
// level as a syslog priority ("<6>" for info) for journald to file it under,
// and carries no timestamp: the journal stamps every line itself.
func newLogger(level slog.Leveler, format string, stderr *os.File, journalStream string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	handler := func(w io.Writer) slog.Handler {
		if format == "json" {
			return slog.NewJSONHandler(w, opts)
		}
		return slog.NewTextHandler(w, opts)
	}
	if !isJournalStream(stderr, journalStream) {
		return slog.New(handler(stderr))
	}
	opts.ReplaceAttr = dropTime
	return slog.New(newJournalHandler(stderr, handler))
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
