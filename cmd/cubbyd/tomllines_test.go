package main

import "testing"

func TestLineKeys(t *testing.T) {
	src := `# comment
root = "/var/lib/cubby"   # trailing

[image]
  platform = "linux/amd64"
  bin = [
    "a = b",
  ]
[image.registries."registry.k8s.io"]
  mirrors = ["http://127.0.0.1:5000"]
[ "cni" ]
a.b = 1
"x.y" = 2
'lit' = 3
"a=b" = 4
not a key
`
	want := map[int]string{
		2:  "root",
		4:  "image",
		5:  "image.platform",
		6:  "image.bin",
		9:  `image.registries."registry.k8s.io"`,
		10: `image.registries."registry.k8s.io".mirrors`,
		11: "cni",
		12: "cni.a.b",
		13: `cni."x.y"`,
		14: "cni.lit",
		15: `cni."a=b"`,
	}
	got := lineKeys(src)
	for i, k := range got {
		if k != want[i+1] {
			t.Errorf("line %d: key %q, want %q", i+1, k, want[i+1])
		}
	}
}
