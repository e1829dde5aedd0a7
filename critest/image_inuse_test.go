package critest

import (
	"path/filepath"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"cubby/critest/framework"
)

// TestRemoveImageInUse removes the image of a created container: the image
// is gone from the image service at once, and the container still starts
// and runs from its layers.
func TestRemoveImageInUse(t *testing.T) {
	env := suite.NewEnv(t)
	reg := suite.Image(t)
	ctx := framework.Context(t)
	is := env.ImageService()
	id := pullImage(t, env, reg.Ref)
	logDir := t.TempDir()
	pod := podConfig("inuse", logDir)
	podID := runPod(t, env, pod)
	cid := createContainer(t, env, podID, pod, containerConfig("inuse", reg.Ref, "inuse.log", "sh", "-c", "echo still-here"))

	if _, err := is.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: imageSpec(id)}); err != nil {
		t.Fatalf("RemoveImage of an image in use: %v", err)
	}
	st, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: imageSpec(reg.Ref)})
	if err != nil || st.GetImage() != nil {
		t.Errorf("ImageStatus after removal = %v, %v; want no image", st.GetImage(), err)
	}
	startContainer(t, env, cid)
	waitContainerState(t, env, cid, runtimeapi.ContainerState_CONTAINER_EXITED)
	readLogUntil(t, filepath.Join(logDir, "inuse.log"), func(e []framework.LogEntry) bool {
		return len(e) > 0 && e[0].Content == "still-here"
	})
}
