package critest

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/cri/imageimport"
	"cubby/critest/framework"
	"cubby/critest/testimage"
)

// TestImageImport loads a docker-save archive through cubbyd's admin socket
// (cubby-specific: `cubby import`) and finds it through CRI.
func TestImageImport(t *testing.T) {
	env := suite.NewEnv(t)
	if !env.Private {
		t.Skip("the admin socket is cubbyd's; not part of CRI")
	}
	suite.Image(t)
	img, err := testimage.Build(suite.Options().Busybox)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag("registry.k8s.io/imported/busybox:1")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	ctx := framework.Context(t)
	got, err := imageimport.Import(ctx, filepath.Join(env.Daemon.Config.State, "admin.sock"), &buf)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("import = %+v; want one image", got)
	}
	st, err := env.ImageService().ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: imageSpec(tag.String())})
	if err != nil || st.GetImage().GetId() != got[0].ID {
		t.Errorf("ImageStatus(%s) = %v, %v; want %s", tag, st.GetImage(), err, got[0].ID)
	}
	if _, err := env.ImageService().RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: imageSpec(got[0].ID)}); err != nil {
		t.Errorf("RemoveImage: %v", err)
	}
}
