package critest

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
	"cubby/critest/testimage"
)

func imageSpec(ref string) *runtimeapi.ImageSpec { return &runtimeapi.ImageSpec{Image: ref} }

// TestImageByDigestAndNames pulls by digest and checks that the id, every
// tag and every digest name one image.
func TestImageByDigestAndNames(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	ctx := framework.Context(t)
	is := env.ImageService()

	ref := pullImage(t, env, reg.DigestRef())
	st, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: imageSpec(reg.DigestRef())})
	if err != nil || st.GetImage() == nil {
		t.Fatalf("ImageStatus by digest: %v, %v", st, err)
	}
	if img := st.GetImage(); img.GetId() != ref || len(img.GetRepoTags()) != 0 || !slices.Contains(img.GetRepoDigests(), reg.DigestRef()) {
		t.Errorf("after a digest pull: id %q tags %q digests %q; want id %q, no tags, digest %q",
			img.GetId(), img.GetRepoTags(), img.GetRepoDigests(), ref, reg.DigestRef())
	}
	if again := pullImage(t, env, reg.Ref); again != ref {
		t.Errorf("pull by tag gave %q, by digest %q: want one image", again, ref)
	}
	for _, name := range []string{ref, reg.Ref, reg.DigestRef()} {
		st, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: imageSpec(name)})
		if err != nil || st.GetImage().GetId() != ref {
			t.Errorf("ImageStatus(%q) = %q, %v; want %q", name, st.GetImage().GetId(), err, ref)
		}
	}
	list, err := is.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: imageSpec(reg.Ref)}})
	if err != nil || len(list.GetImages()) != 1 || list.GetImages()[0].GetId() != ref {
		t.Errorf("ListImages(filter %s) = %v, %v", reg.Ref, list.GetImages(), err)
	}

	// Five concurrent removals by different names all succeed, and the
	// image is gone under every name.
	var wg sync.WaitGroup
	for _, name := range []string{ref, reg.Ref, reg.DigestRef(), ref, reg.Ref} {
		wg.Go(func() {
			if _, err := is.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: imageSpec(name)}); err != nil {
				t.Errorf("RemoveImage(%q): %v", name, err)
			}
		})
	}
	wg.Wait()
	for _, name := range []string{ref, reg.Ref, reg.DigestRef()} {
		st, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: imageSpec(name)})
		if err != nil || st.GetImage() != nil {
			t.Errorf("ImageStatus(%q) after remove = %v, %v; want empty", name, st.GetImage(), err)
		}
	}
}

func TestImagePullMalformed(t *testing.T) {
	env := suite.NewEnv(t)
	_, err := env.ImageService().PullImage(framework.Context(t), &runtimeapi.PullImageRequest{Image: imageSpec("Not A/Reference::")})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("PullImage(malformed) = %v; want InvalidArgument", err)
	}
}

func TestImagePullDeadline(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	ctx, cancel := context.WithTimeout(framework.Context(t), time.Millisecond)
	defer cancel()
	_, err := env.ImageService().PullImage(ctx, &runtimeapi.PullImageRequest{Image: imageSpec(reg.Ref)})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("PullImage with a 1ms deadline = %v; want DeadlineExceeded", err)
	}
	// Nothing left behind. The daemon may still be unwinding the pull; a
	// list afterwards must never show a half image, and status of the
	// reference shows either nothing or (if the pull won the race) a
	// whole image.
	list, err := env.ImageService().ListImages(framework.Context(t), &runtimeapi.ListImagesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range list.GetImages() {
		t.Errorf("image %q %q listed after a pull that failed", img.GetId(), img.GetRepoTags())
	}
}

func TestImagePullAuth(t *testing.T) {
	env := suite.NewEnv(t)
	suite.Image(t) // skips without busybox
	img, err := testimage.Build(suite.Options().Busybox)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := testimage.ServeAuth(framework.Context(t), img, "alice", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
	})
	is := env.ImageService()
	ctx := framework.Context(t)
	for _, auth := range []*runtimeapi.AuthConfig{nil, {Username: "alice", Password: "wrong"}} {
		_, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{Image: imageSpec(reg.Ref), Auth: auth})
		if c := status.Code(err); (c != codes.Unauthenticated && c != codes.PermissionDenied) || !strings.Contains(err.Error(), reg.Host) {
			t.Errorf("PullImage with auth %v = %v; want Unauthenticated naming %s", auth, err, reg.Host)
		}
	}
	resp, err := is.PullImage(ctx, &runtimeapi.PullImageRequest{
		Image: imageSpec(reg.Ref),
		Auth:  &runtimeapi.AuthConfig{Username: "alice", Password: "s3cret"},
	})
	if err != nil {
		t.Fatalf("PullImage with the right password: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := framework.CleanupContext()
		defer cancel()
		_, _ = is.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: imageSpec(resp.GetImageRef())})
	})
	if resp.GetImageRef() == "" {
		t.Error("empty image_ref")
	}
}

func TestImageFsInfo(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	pullImage(t, env, reg.Ref)
	info, err := env.ImageService().ImageFsInfo(framework.Context(t), &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		t.Fatalf("ImageFsInfo: %v", err)
	}
	if len(info.GetImageFilesystems()) == 0 {
		t.Fatal("ImageFsInfo: no image filesystems")
	}
	for _, fs := range info.GetImageFilesystems() {
		if fs.GetFsId().GetMountpoint() == "" || fs.GetUsedBytes().GetValue() == 0 || fs.GetInodesUsed().GetValue() == 0 || fs.GetTimestamp() == 0 {
			t.Errorf("image filesystem %v: want a mountpoint, used bytes, inodes and a timestamp", fs)
		}
	}
	for _, fs := range info.GetContainerFilesystems() {
		if fs.GetFsId().GetMountpoint() == "" {
			t.Errorf("container filesystem %v: no mountpoint", fs)
		}
	}
}
