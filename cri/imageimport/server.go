package imageimport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"cubby/rootfs"
)

// Path is the URL path of the import call.
const Path = "/images/import"

// Importer is what the endpoint needs of the image store.
type Importer interface {
	Import(ctx context.Context, r io.Reader) ([]rootfs.Image, error)
}

// Image is one imported image as the endpoint reports it.
type Image struct {
	ID          string   `json:"id"`
	RepoTags    []string `json:"repoTags,omitempty"`
	RepoDigests []string `json:"repoDigests,omitempty"`
}

type response struct {
	Images []Image `json:"images,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// Handler returns the admin HTTP handler over imp.
func Handler(imp Importer, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+Path, func(w http.ResponseWriter, r *http.Request) {
		imgs, err := imp.Import(r.Context(), r.Body)
		if err != nil {
			log.Warn("image import failed", "err", err)
			code := http.StatusInternalServerError
			switch {
			case errors.Is(err, rootfs.ErrInvalidArgument), errors.Is(err, rootfs.ErrDigestMismatch):
				code = http.StatusBadRequest
			case errors.Is(err, rootfs.ErrNotFound):
				code = http.StatusNotFound
			}
			writeJSON(w, code, response{Error: err.Error()})
			return
		}
		var out []Image
		for _, img := range imgs {
			out = append(out, Image{ID: img.ID, RepoTags: img.RepoTags, RepoDigests: img.RepoDigests})
			log.Info("imported image", "id", img.ID, "tags", img.RepoTags)
		}
		writeJSON(w, http.StatusOK, response{Images: out})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Listen listens on the unix socket path with mode 0600, replacing a
// stale socket.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("create admin socket dir: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale admin socket %q: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %q: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod admin socket %q: %w", path, err)
	}
	return ln, nil
}
