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

func TestIOParsing(t *testing.T) {
	got := v1IO("8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 1\n8:16 Read 512\nTotal 12800\n", "8:0 Read 1\n8:0 Write 2\n8:16 Read 3\nTotal 6\n")
	want := []DeviceIO{{Major: 8, Minor: 0, ReadBytes: 4096, WriteBytes: 8192, Reads: 1, Writes: 2}, {Major: 8, Minor: 16, ReadBytes: 512, Reads: 3}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("v1IO = %+v, want %+v", got, want)
	}
	got = v2IO("253:0 rbytes=100 wbytes=200 rios=3 wios=4 dbytes=0 dios=0\n")
	if len(got) != 1 || got[0] != (DeviceIO{Major: 253, ReadBytes: 100, WriteBytes: 200, Reads: 3, Writes: 4}) {
		t.Errorf("v2IO = %+v", got)
	}
}
