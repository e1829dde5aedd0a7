package critest

import (
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

func TestImage(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	ctx := framework.Context(t)
	is := env.ImageService()

	ref := pullImage(t, env, reg.Ref)
	if ref == "" {
		t.Fatalf("pull %s: empty image_ref", reg.Ref)
	}

	list, err := is.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatalf("ListImages: %v", err)
	}
	if !slices.ContainsFunc(list.GetImages(), func(img *runtimeapi.Image) bool { return img.GetId() == ref }) {
		t.Errorf("ListImages: no image with id %q among %d images", ref, len(list.GetImages()))
	}

	st, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: reg.Ref}})
	if err != nil {
		t.Fatalf("ImageStatus %s: %v", reg.Ref, err)
	}
	img := st.GetImage()
	if img == nil {
		t.Fatalf("ImageStatus %s: nil image after pull", reg.Ref)
	}
	if img.GetId() != ref {
		t.Errorf("ImageStatus: id %q, want the pull's image_ref %q", img.GetId(), ref)
	}
	if !slices.Contains(img.GetRepoTags(), reg.Ref) {
		t.Errorf("ImageStatus: repo_tags %q lack %q", img.GetRepoTags(), reg.Ref)
	}
	if !slices.Contains(img.GetRepoDigests(), reg.DigestRef()) {
		t.Errorf("ImageStatus: repo_digests %q lack %q", img.GetRepoDigests(), reg.DigestRef())
	}
	if img.GetSize() == 0 {
		t.Error("ImageStatus: size is 0")
	}

	if _, err := is.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}}); err != nil {
		t.Fatalf("RemoveImage %q: %v", ref, err)
	}
	st, err = is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: reg.Ref}})
	if err != nil {
		t.Fatalf("ImageStatus after remove: %v", err)
	}
	if st.GetImage() != nil {
		t.Errorf("ImageStatus after remove: got image %q, want none", st.GetImage().GetId())
	}
}
