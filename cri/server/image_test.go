package server

import (
	"testing"

	"cubby/rootfs"
)

// TestCRIImageUser checks how an image's USER reaches kubelet: a numeric
// user as uid (the group dropped), a name as username.
func TestCRIImageUser(t *testing.T) {
	tests := []struct {
		user     string
		uid      int64
		hasUID   bool
		username string
	}{
		{user: ""},
		{user: "1002", uid: 1002, hasUID: true},
		{user: "0", uid: 0, hasUID: true},
		{user: "www-data", username: "www-data"},
		{user: "1003:group", uid: 1003, hasUID: true},
		{user: "www-data:group", username: "www-data"},
		{user: "1004:1005", uid: 1004, hasUID: true},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			img := criImage(rootfs.Image{ID: "sha256:x", Config: rootfs.ImageConfig{User: tt.user}})
			if got := img.GetUid() != nil; got != tt.hasUID {
				t.Fatalf("uid set = %v, want %v", got, tt.hasUID)
			}
			if tt.hasUID && img.GetUid().GetValue() != tt.uid {
				t.Errorf("uid = %d, want %d", img.GetUid().GetValue(), tt.uid)
			}
			if img.GetUsername() != tt.username {
				t.Errorf("username = %q, want %q", img.GetUsername(), tt.username)
			}
		})
	}
}
