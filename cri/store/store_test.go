package store

import (
	"path/filepath"
	"testing"
)

// TestContainerMarkersRoundTrip: the crash markers of a container record
// survive the store, and a cleared one is gone.
func TestContainerMarkersRoundTrip(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, want := range []Container{
		{ID: "a", PodID: "p", State: ContainerCreated, Creating: true},
		{ID: "b", PodID: "p", State: ContainerCreated, Starting: true},
		{ID: "a", PodID: "p", State: ContainerCreated},
	} {
		if err := db.PutContainer(want); err != nil {
			t.Fatal(err)
		}
		got, err := db.Containers()
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, c := range got {
			if c.ID == want.ID {
				found = true
				if c.Creating != want.Creating || c.Starting != want.Starting || c.State != want.State {
					t.Errorf("record %q: creating=%v starting=%v state=%s, want %v %v %s", c.ID, c.Creating, c.Starting, c.State, want.Creating, want.Starting, want.State)
				}
			}
		}
		if !found {
			t.Errorf("record %q not stored", want.ID)
		}
	}
}

// BenchmarkPutContainer is the cost of one container record update (one
// bbolt transaction, fsynced): what each crash marker adds to
// CreateContainer and StartContainer.
func BenchmarkPutContainer(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "meta.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	c := Container{ID: "0123456789abcdef", PodID: "p", Config: make([]byte, 512), State: ContainerCreated}
	for i := 0; b.Loop(); i++ {
		c.Starting = i%2 == 0
		if err := db.PutContainer(c); err != nil {
			b.Fatal(err)
		}
	}
}
