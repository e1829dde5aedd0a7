package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestApplyHugeSparseFile unpacks a PAX (GNU 1.0) sparse entry of 1 GiB
// that carries four bytes of data: the file gets its size without the
// holes being written out, so a hostile layer cannot fill the disk with
// what its tar stream does not contain.
func TestApplyHugeSparseFile(t *testing.T) {
	requireRoot(t)
	const realSize = int64(1) << 30
	var sparseMap bytes.Buffer
	fmt.Fprintf(&sparseMap, "1\n%d\n4\n", realSize-4)
	mapBlock := make([]byte, 512)
	copy(mapBlock, sparseMap.Bytes())
	data := append(mapBlock, []byte("tail")...)

	// archive/tar's writer cannot encode sparse files: the blocks are
	// written by hand, as GNU tar writes them (--sparse --format=posix).
	var buf bytes.Buffer
	pax := paxRecords([][2]string{
		{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"},
		{"GNU.sparse.name", "big"}, {"GNU.sparse.realsize", fmt.Sprint(realSize)},
	})
	buf.Write(ustarHeader("PaxHeaders/big", tar.TypeXHeader, int64(len(pax))))
	buf.Write(padBlock(pax))
	buf.Write(ustarHeader("GNUSparseFile.0/big", tar.TypeReg, int64(len(data))))
	buf.Write(padBlock(data))
	buf.Write(make([]byte, 1024)) // end of archive

	dir := t.TempDir()
	if err := Apply(context.Background(), dir, &buf); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "big"), &st); err != nil {
		ents, _ := os.ReadDir(dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("%v (layer has %q)", err, names)
	}
	if st.Size != realSize {
		t.Errorf("size %d, want %d", st.Size, realSize)
	}
	if used := st.Blocks * 512; used > 1<<20 {
		t.Errorf("the holes were written: %d bytes on disk for 4 bytes of data", used)
	}
	f, err := os.Open(filepath.Join(dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tail := make([]byte, 4)
	if _, err := f.ReadAt(tail, realSize-4); err != nil || string(tail) != "tail" {
		t.Errorf("last bytes %q, %v; want \"tail\"", tail, err)
	}
}

// paxRecords encodes PAX extended header records ("%d %s=%s\n", the
// length counting itself).
func paxRecords(kvs [][2]string) []byte {
	var b bytes.Buffer
	for _, kv := range kvs {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 1
		for len(fmt.Sprint(n))+len(rec) != n {
			n++
		}
		fmt.Fprintf(&b, "%d%s", n, rec)
	}
	return b.Bytes()
}

// ustarHeader is one 512-byte ustar header block.
func ustarHeader(name string, typ byte, size int64) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:108], "0000644\x00")
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	copy(h[136:148], fmt.Sprintf("%011o\x00", 1_600_000_000))
	h[156] = typ
	copy(h[257:265], "ustar\x0000")
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

// padBlock pads b to a multiple of 512 bytes.
func padBlock(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// TestApplyTruncatedFile checks that a layer whose last file is cut short
// fails instead of leaving a short file behind as if it were complete.
func TestApplyTruncatedFile(t *testing.T) {
	requireRoot(t)
	full := buildTar(t, []entry{{name: "f", typ: tar.TypeReg, body: string(bytes.Repeat([]byte("x"), 100_000))}}).Bytes()
	cut := full[:512+70_000] // the header and part of the data
	if err := Apply(context.Background(), t.TempDir(), bytes.NewReader(cut)); err == nil {
		t.Fatal("Apply of a truncated layer succeeded")
	}
}
