package cgroupmgr

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFileReader(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"memory.stat":           "total_cache 4096\ntotal_rss 8192\nbroken\n",
		"memory.limit_in_bytes": "9223372036854771712\n",
		"cpu.cfs_quota_us":      "-1\n",
		"pids.max":              "max\n",
		"cpu.shares":            "1024\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := fileReader{dir}
	st := r.keyed("memory.stat")
	if st["total_cache"] != 4096 || st["total_rss"] != 8192 || len(st) != 2 {
		t.Errorf("keyed = %v", st)
	}
	for name, want := range map[string]uint64{
		"memory.limit_in_bytes": 0, // unlimited
		"cpu.cfs_quota_us":      0, // no quota
		"pids.max":              0, // max
		"cpu.shares":            1024,
		"missing":               0,
	} {
		if got := r.uint(name); got != want {
			t.Errorf("uint(%s) = %d, want %d", name, got, want)
		}
	}
}
