package podinit

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOpenLogRefusesPlantedPaths plants at a log path what a container
// that can write into its log directory could, and checks that openLog
// refuses each without writing anywhere else, and makes a plain log.
func TestOpenLogRefusesPlantedPaths(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rel   string
		plant func(t *testing.T, dir, outside string)
		want  string // in the error; "" for success
	}{
		{name: "fresh-nested", rel: "c/0.log"},
		{name: "existing-file", rel: "c.log", plant: func(t *testing.T, dir, _ string) {
			logTestMust(t, os.WriteFile(filepath.Join(dir, "c.log"), []byte("old\n"), 0o640))
		}},
		{name: "symlink-to-file", rel: "c.log", want: "symbolic link", plant: func(t *testing.T, dir, outside string) {
			logTestMust(t, os.Symlink(filepath.Join(outside, "victim"), filepath.Join(dir, "c.log")))
		}},
		{name: "dangling-symlink", rel: "c.log", want: "symbolic link", plant: func(t *testing.T, dir, outside string) {
			logTestMust(t, os.Symlink(filepath.Join(outside, "new"), filepath.Join(dir, "c.log")))
		}},
		{name: "symlinked-directory", rel: "c/0.log", want: "symbolic link", plant: func(t *testing.T, dir, outside string) {
			logTestMust(t, os.Symlink(outside, filepath.Join(dir, "c")))
		}},
		{name: "relative-symlinked-directory", rel: "c/0.log", want: "symbolic link", plant: func(t *testing.T, dir, _ string) {
			logTestMust(t, os.Symlink("..", filepath.Join(dir, "c")))
		}},
		{name: "fifo", rel: "c.log", want: "not a regular file", plant: func(t *testing.T, dir, _ string) {
			logTestMust(t, syscall.Mkfifo(filepath.Join(dir, "c.log"), 0o600))
		}},
		{name: "hard-link", rel: "c.log", want: "hard links", plant: func(t *testing.T, dir, outside string) {
			logTestMust(t, os.Link(filepath.Join(outside, "victim"), filepath.Join(dir, "c.log")))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir, outside := filepath.Join(base, "pod"), filepath.Join(base, "host")
			logTestMust(t, os.Mkdir(dir, 0o755))
			logTestMust(t, os.Mkdir(outside, 0o755))
			victim := filepath.Join(outside, "victim")
			logTestMust(t, os.WriteFile(victim, []byte("host\n"), 0o600))
			if tc.plant != nil {
				tc.plant(t, dir, outside)
			}
			f, err := openLog(dir, filepath.Join(dir, tc.rel))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("openLog: %v", err)
				}
				_, werr := f.WriteString("new\n")
				f.Close()
				logTestMust(t, werr)
			} else {
				if err == nil {
					f.Close()
					t.Fatalf("openLog took the planted %s", tc.name)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error %q does not say %q", err, tc.want)
				}
			}
			if b, _ := os.ReadFile(victim); string(b) != "host\n" {
				t.Errorf("host file written: %q", b)
			}
			if _, err := os.Lstat(filepath.Join(outside, "new")); err == nil {
				t.Error("a file was created outside the log directory")
			}
		})
	}
}

func logTestMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
