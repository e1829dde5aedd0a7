package server

import (
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"cubby/cri/store"
	"cubby/sandbox"
)

// TestExitRecordedWhenTheStoreFails: a store that fails every write must
// not leave an exited container RUNNING forever.
func TestExitRecordedWhenTheStoreFails(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Close() // every write fails from here on
	s := &Server{db: db, log: slog.New(slog.DiscardHandler), objs: newObjects()}
	c := &container{id: "c1", exited: make(chan struct{}), rec: store.Container{ID: "c1", State: store.ContainerRunning}}

	s.recordExit(c, sandbox.Exit{Code: 3, FinishedAt: 42}, false)

	rec := c.status()
	if rec.State != store.ContainerExited || rec.ExitCode != 3 || rec.FinishedAt != 42 || rec.Reason != "Error" {
		t.Errorf("after an exit the store could not take: %+v, want EXITED with code 3", rec)
	}
	select {
	case <-c.exited:
	default:
		t.Error("the container's exit was not announced to its waiters")
	}
}

func TestRetryStoreWriteGoesOnUntilAWriteSucceeds(t *testing.T) {
	tries := 0
	err := retryStoreWrite(func() error {
		tries++
		if tries < 3 {
			return errStoreTest
		}
		return nil
	})
	if err != nil || tries != 3 {
		t.Errorf("err %v after %d tries, want success at the 3rd", err, tries)
	}
	tries = 0
	if err := retryStoreWrite(func() error { tries++; return errStoreTest }); err == nil || tries != len(storeWriteBackoff)+1 {
		t.Errorf("a write that always fails: err %v after %d tries, want the error after %d", err, tries, len(storeWriteBackoff)+1)
	}
}

var errStoreTest = errors.New("store write failed")
